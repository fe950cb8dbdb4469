package ipam_test

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
)

var macRE = regexp.MustCompile(`^02(:[0-9a-f]{2}){5}$`)

// TestLifecycle walks the inventory: VPC, subnet, instance, ENI, attach, detach, addresses, deletes.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	c, _ := replica(t)
	ctx := as(unique("acct-life"))
	name60 := strings.Repeat("é", 60)
	v := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: name60, CidrBlock: "172.16.0.0/12"})).GetVpc()
	if v.GetVpcName() != name60 || v.GetCidrBlock() != "172.16.0.0/12" || !regexp.MustCompile(`^vpc-[a-z0-9]{8}$`).MatchString(v.GetVpcId()) {
		t.Fatalf("vpc: %v", v)
	}
	sn := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: v.GetVpcId(), SubnetName: "a", CidrBlock: "172.16.0.0/24", Zone: "zone-1"})).GetSubnet()
	if sn.GetTotalIpAddressCount() != 253 || sn.GetAvailableIpAddressCount() != 253 || sn.GetGatewayIpAddress() != "172.16.0.1" {
		t.Fatalf("subnet: %v", sn)
	}
	ins := etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "web", SubnetId: sn.GetSubnetId(), HostId: "host-a"}))
	pe := ins.GetPrimaryNetworkInterface()
	if !pe.GetPrimary() || pe.GetInstanceId() != ins.GetInstance().GetInstanceId() || !macRE.MatchString(pe.GetMacAddress()) ||
		ins.GetInstance().GetPrimaryNetworkInterfaceId() != pe.GetNetworkInterfaceId() || ins.GetInstance().GetPrivateIpAddress() != pe.GetPrimaryIpAddress() ||
		ins.GetInstance().GetVpcId() != v.GetVpcId() {
		t.Fatalf("instance: %v", ins)
	}
	eni := etcdtest.Must[*ipamv1.CreateNetworkInterfaceResponse](t)(c.CreateNetworkInterface(ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: sn.GetSubnetId(), NetworkInterfaceName: "vip-eni", PrivateIpAddress: "172.16.0.254"})).GetNetworkInterface()
	if eni.GetPrimary() || eni.GetInstanceId() != "" || eni.GetPrimaryIpAddress() != "172.16.0.254" || eni.GetMacAddress() == pe.GetMacAddress() {
		t.Fatalf("eni: %v", eni)
	}
	att := etcdtest.Must[*ipamv1.AttachNetworkInterfaceResponse](t)(c.AttachNetworkInterface(ctx, &ipamv1.AttachNetworkInterfaceRequest{NetworkInterfaceId: eni.GetNetworkInterfaceId(), InstanceId: ins.GetInstance().GetInstanceId()}))
	if att.GetNetworkInterface().GetInstanceId() != ins.GetInstance().GetInstanceId() {
		t.Fatalf("attach: %v", att)
	}
	// Read-your-writes: the attachment shows in the next Describe, filtered by instance.
	byIns := etcdtest.Must[*ipamv1.DescribeNetworkInterfacesResponse](t)(c.DescribeNetworkInterfaces(ctx, &ipamv1.DescribeNetworkInterfacesRequest{
		Filters: []*ipamv1.Filter{{Name: "instance-id", Values: []string{ins.GetInstance().GetInstanceId()}}},
	}))
	if byIns.GetTotalCount() != 2 || byIns.GetNetworkInterfaceSet()[0].GetNetworkInterfaceId() != pe.GetNetworkInterfaceId() {
		t.Fatalf("enis of the instance (oldest first): %v", byIns)
	}
	det := etcdtest.Must[*ipamv1.DetachNetworkInterfaceResponse](t)(c.DetachNetworkInterface(ctx, &ipamv1.DetachNetworkInterfaceRequest{NetworkInterfaceId: eni.GetNetworkInterfaceId()}))
	if det.GetNetworkInterface().GetInstanceId() != "" {
		t.Fatalf("detach: %v", det)
	}
	// Addresses: the two ENIs hold two; a plain allocation and its release move the count.
	// The lowest usable address, unless the instance drew it (automatic allocation is random).
	first := "172.16.0.2"
	if pe.GetPrimaryIpAddress() == first {
		first = "172.16.0.3"
	}
	addr := etcdtest.Must[*ipamv1.AllocatePrivateIpAddressResponse](t)(c.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: sn.GetSubnetId(), IpAddress: first, Owner: "test"})).GetAddress()
	if addr.GetIpAddress() != first || addr.GetReserved() {
		t.Fatalf("allocate: %v", addr)
	}
	avail := func() uint64 {
		r := etcdtest.Must[*ipamv1.DescribeSubnetsResponse](t)(c.DescribeSubnets(ctx, &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{sn.GetSubnetId()}}))
		return r.GetSubnetSet()[0].GetAvailableIpAddressCount()
	}
	if got := avail(); got != 250 {
		t.Errorf("available after 3 allocations: %d, want 250", got)
	}
	list := etcdtest.Must[*ipamv1.DescribePrivateIpAddressesResponse](t)(c.DescribePrivateIpAddresses(ctx, &ipamv1.DescribePrivateIpAddressesRequest{SubnetId: sn.GetSubnetId()}))
	want := []string{first, pe.GetPrimaryIpAddress(), "172.16.0.254"}
	slices.SortFunc(want, func(a, b string) int { return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b)) })
	var got []string
	for _, a := range list.GetAddressSet() {
		got = append(got, a.GetIpAddress())
	}
	if list.GetTotalCount() != 3 || !slices.Equal(got, want) {
		t.Errorf("addresses %v, want %v in address order", got, want)
	}
	etcdtest.Must[*ipamv1.ReleasePrivateIpAddressResponse](t)(c.ReleasePrivateIpAddress(ctx, &ipamv1.ReleasePrivateIpAddressRequest{SubnetId: sn.GetSubnetId(), IpAddress: first}))
	if got := avail(); got != 251 {
		t.Errorf("available after release: %d, want 251", got)
	}
	// An empty subnet and an empty VPC can be deleted; they are gone afterwards.
	empty := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: v.GetVpcId(), SubnetName: "b", CidrBlock: "172.16.1.0/29"})).GetSubnet()
	etcdtest.Must[*ipamv1.DeleteSubnetResponse](t)(c.DeleteSubnet(ctx, &ipamv1.DeleteSubnetRequest{SubnetId: empty.GetSubnetId()}))
	if _, err := c.DescribeSubnets(ctx, &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{empty.GetSubnetId()}}); status.Code(err) != codes.NotFound {
		t.Errorf("deleted subnet: %v", err)
	}
	// The freed block can be used again.
	etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: v.GetVpcId(), SubnetName: "b2", CidrBlock: "172.16.1.0/28"}))
	v2 := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "tmp", CidrBlock: "10.9.0.0/16"})).GetVpc()
	etcdtest.Must[*ipamv1.DeleteVpcResponse](t)(c.DeleteVpc(ctx, &ipamv1.DeleteVpcRequest{VpcId: v2.GetVpcId()}))
	vpcs := etcdtest.Must[*ipamv1.DescribeVpcsResponse](t)(c.DescribeVpcs(ctx, &ipamv1.DescribeVpcsRequest{}))
	if vpcs.GetTotalCount() != 1 || vpcs.GetVpcSet()[0].GetVpcId() != v.GetVpcId() {
		t.Errorf("vpcs after delete: %v", vpcs)
	}
}

// TestPaging: offset and limit walk a list once, in creation order, with the total.
func TestPaging(t *testing.T) {
	t.Parallel()
	c, _ := replica(t)
	ctx := as(unique("acct-paging"))
	var want []string
	for range 25 {
		want = append(want, etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "p", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId())
	}
	var got []string
	for off := uint32(0); ; off += 7 {
		r := etcdtest.Must[*ipamv1.DescribeVpcsResponse](t)(c.DescribeVpcs(ctx, &ipamv1.DescribeVpcsRequest{Offset: off, Limit: 7}))
		if r.GetTotalCount() != 25 {
			t.Fatalf("total %d", r.GetTotalCount())
		}
		if len(r.GetVpcSet()) == 0 {
			break
		}
		for _, v := range r.GetVpcSet() {
			got = append(got, v.GetVpcId())
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("paged %v, want %v", got, want)
	}
	if r := etcdtest.Must[*ipamv1.DescribeVpcsResponse](t)(c.DescribeVpcs(ctx, &ipamv1.DescribeVpcsRequest{})); len(r.GetVpcSet()) != 20 {
		t.Errorf("default page has %d, want 20", len(r.GetVpcSet()))
	}
}

// TestAccounts: one account's resources do not exist for another.
func TestAccounts(t *testing.T) {
	t.Parallel()
	c, _ := replica(t)
	subnet := newSubnet(t, c, unique("acct-owner"), "10.0.0.0/16", "10.0.0.0/24")
	intruder := as(unique("acct-intruder"))
	if r := etcdtest.Must[*ipamv1.DescribeSubnetsResponse](t)(c.DescribeSubnets(intruder, &ipamv1.DescribeSubnetsRequest{})); r.GetTotalCount() != 0 {
		t.Errorf("intruder sees %v", r)
	}
	_, err := c.DescribeSubnets(intruder, &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{subnet}})
	_, err2 := c.DescribeSubnets(intruder, &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{"subnet-00000000"}})
	if status.Code(err) != codes.NotFound || status.Convert(err).Message() != strings.Replace(status.Convert(err2).Message(), "subnet-00000000", subnet, 1) {
		t.Errorf("another account's subnet must look exactly like a missing one: %v vs %v", err, err2)
	}
	if _, err := c.AllocatePrivateIpAddress(intruder, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: subnet}); apierr.Reason(err) != apierr.ReasonResourceNotFound {
		t.Errorf("intruder allocates: %v", err)
	}
}

// TestReservationExpires: a reservation that is not committed disappears with its lease; a
// committed one stays.
func TestReservationExpires(t *testing.T) {
	t.Parallel()
	c, _ := replica(t)
	acct := unique("acct-resv")
	ctx := as(acct)
	subnet := newSubnet(t, c, acct, "10.0.0.0/16", "10.0.0.0/24")
	reserve := func() *ipamv1.PrivateIpAddress {
		a := etcdtest.Must[*ipamv1.AllocatePrivateIpAddressResponse](t)(c.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: subnet, ReservationTtlSeconds: 1})).GetAddress()
		if !a.GetReserved() || a.GetReservationToken() == "" {
			t.Fatalf("not a reservation: %v", a)
		}
		return a
	}
	lost, kept := reserve(), reserve()
	etcdtest.Must[*ipamv1.CommitPrivateIpAddressResponse](t)(c.CommitPrivateIpAddress(ctx, &ipamv1.CommitPrivateIpAddressRequest{SubnetId: subnet, IpAddress: kept.GetIpAddress(), ReservationToken: kept.GetReservationToken(), Owner: "holder-1"}))
	deadline := time.Now().Add(15 * time.Second)
	for {
		list := etcdtest.Must[*ipamv1.DescribePrivateIpAddressesResponse](t)(c.DescribePrivateIpAddresses(ctx, &ipamv1.DescribePrivateIpAddressesRequest{SubnetId: subnet}))
		if list.GetTotalCount() == 1 {
			if a := list.GetAddressSet()[0]; a.GetIpAddress() != kept.GetIpAddress() || a.GetReserved() || a.GetOwner() != "holder-1" {
				t.Fatalf("left: %v", a)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reservation never expired: %v", list)
		}
		time.Sleep(100 * time.Millisecond) // polling for the lease's expiry
	}
	_, err := c.CommitPrivateIpAddress(ctx, &ipamv1.CommitPrivateIpAddressRequest{SubnetId: subnet, IpAddress: lost.GetIpAddress(), ReservationToken: lost.GetReservationToken()})
	if apierr.Reason(err) != apierr.ReasonReservationExpired {
		t.Errorf("commit after expiry: %v", err)
	}
}
