package ipam_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/records"
)

// world is the state the refusal cases run against.
type world struct {
	vpc, vpc2, subnetA, subnetB, fullSubnet   string
	instance, instance2, primaryEni, spareEni string
	primaryIP, plainIP, freeIP                string
	otherVpc, otherSubnet, otherEni           string
	// attachedEni is attached to instance; boundEni (detached) and instance2's primary ENI
	// have an EIP bound; otherInstance is the other account's.
	attachedEni, boundEni, otherInstance string
}

// bindEip records an EIP binding of an ENI's IP as eipd does (records.EipENIBindings): the
// key alone is what IPAM's deletes look at (integration/eip binds through eipd itself).
func bindEip(t *testing.T, eni, ip string) {
	t.Helper()
	if _, err := etcdtest.Client(t, etcdEndpoint).Put(context.Background(), records.EipENIBindings+eni+"/"+ip, ids.New(ids.Address)); err != nil {
		t.Fatal(err)
	}
}

func buildWorld(t *testing.T, c ipamv1.IpamServiceClient, account, other string) world {
	ctx, octx := as(account), as(other)
	var w world
	w.vpc = etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "main", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	w.vpc2 = etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "second", CidrBlock: "192.168.0.0/24"})).GetVpc().GetVpcId()
	subnet := func(vpc, cidr string) string {
		return etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: cidr})).GetSubnet().GetSubnetId()
	}
	w.subnetA, w.subnetB, w.fullSubnet = subnet(w.vpc, "10.0.0.0/24"), subnet(w.vpc, "10.0.1.0/24"), subnet(w.vpc, "10.0.2.0/29")
	ins2 := etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "db-1", SubnetId: subnet(w.vpc2, "192.168.0.0/28"), HostId: "host-2"}))
	w.instance2 = ins2.GetInstance().GetInstanceId()
	bindEip(t, ins2.GetPrimaryNetworkInterface().GetNetworkInterfaceId(), ins2.GetPrimaryNetworkInterface().GetPrimaryIpAddress())
	eni := func(name, ip string) string {
		return etcdtest.Must[*ipamv1.CreateNetworkInterfaceResponse](t)(c.CreateNetworkInterface(ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: w.subnetA, NetworkInterfaceName: name, PrivateIpAddress: ip})).GetNetworkInterface().GetNetworkInterfaceId()
	}
	w.spareEni, w.attachedEni, w.boundEni = eni("spare", "10.0.0.50"), eni("attached", "10.0.0.51"), eni("bound", "10.0.0.52")
	bindEip(t, w.boundEni, "10.0.0.52")
	w.plainIP = etcdtest.Must[*ipamv1.AllocatePrivateIpAddressResponse](t)(c.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: w.subnetA, IpAddress: "10.0.0.100"})).GetAddress().GetIpAddress()
	// Automatic allocations come after the chosen addresses, which they might otherwise take.
	ins := etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "web-1", SubnetId: w.subnetA, HostId: "host-1"}))
	w.instance, w.primaryEni, w.primaryIP = ins.GetInstance().GetInstanceId(), ins.GetPrimaryNetworkInterface().GetNetworkInterfaceId(), ins.GetPrimaryNetworkInterface().GetPrimaryIpAddress()
	etcdtest.Must[*ipamv1.AttachNetworkInterfaceResponse](t)(c.AttachNetworkInterface(ctx, &ipamv1.AttachNetworkInterfaceRequest{NetworkInterfaceId: w.attachedEni, InstanceId: w.instance}))
	w.freeIP = "10.0.0.200"
	if w.primaryIP == w.freeIP {
		w.freeIP = "10.0.0.201"
	}
	for range 5 { // a /29 has 5 usable addresses
		etcdtest.Must[*ipamv1.AllocatePrivateIpAddressResponse](t)(c.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: w.fullSubnet}))
	}
	w.otherVpc = etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.CreateVpc(octx, &ipamv1.CreateVpcRequest{VpcName: "theirs", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	w.otherSubnet = etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.CreateSubnet(octx, &ipamv1.CreateSubnetRequest{VpcId: w.otherVpc, SubnetName: "theirs", CidrBlock: "10.0.0.0/24"})).GetSubnet().GetSubnetId()
	w.otherEni = etcdtest.Must[*ipamv1.CreateNetworkInterfaceResponse](t)(c.CreateNetworkInterface(octx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: w.otherSubnet, NetworkInterfaceName: "theirs"})).GetNetworkInterface().GetNetworkInterfaceId()
	w.otherInstance = etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.CreateInstance(octx, &ipamv1.CreateInstanceRequest{InstanceName: "theirs", SubnetId: w.otherSubnet, HostId: "host-9"})).GetInstance().GetInstanceId()
	return w
}

// snapshot is everything an account can see, for checking that a refusal changed nothing.
func snapshot(t *testing.T, c ipamv1.IpamServiceClient, account string) []any {
	t.Helper()
	ctx := as(account)
	vpcs := etcdtest.Must[*ipamv1.DescribeVpcsResponse](t)(c.DescribeVpcs(ctx, &ipamv1.DescribeVpcsRequest{Limit: 100}))
	subnets := etcdtest.Must[*ipamv1.DescribeSubnetsResponse](t)(c.DescribeSubnets(ctx, &ipamv1.DescribeSubnetsRequest{Limit: 100}))
	out := []any{vpcs, subnets,
		etcdtest.Must[*ipamv1.DescribeInstancesResponse](t)(c.DescribeInstances(ctx, &ipamv1.DescribeInstancesRequest{Limit: 100})),
		etcdtest.Must[*ipamv1.DescribeNetworkInterfacesResponse](t)(c.DescribeNetworkInterfaces(ctx, &ipamv1.DescribeNetworkInterfacesRequest{Limit: 100})),
	}
	for _, s := range subnets.GetSubnetSet() {
		out = append(out, etcdtest.Must[*ipamv1.DescribePrivateIpAddressesResponse](t)(c.DescribePrivateIpAddresses(ctx, &ipamv1.DescribePrivateIpAddressesRequest{SubnetId: s.GetSubnetId(), Limit: 100})))
	}
	return out
}

// TestRefusals: every bad input gets its own code and reason, and changes nothing.
func TestRefusals(t *testing.T) {
	t.Parallel()
	c, _ := replica(t)
	account, other := unique("acct-rules"), unique("acct-rules-other")
	w := buildWorld(t, c, account, other)
	ctx := as(account)
	long := strings.Repeat("x", 61)

	type call func(ctx context.Context) error
	cases := []struct {
		name   string
		ctx    context.Context // nil: the account's
		call   call
		code   codes.Code
		reason string
	}{
		{"no account", context.Background(), func(ctx context.Context) error {
			_, err := c.DescribeVpcs(ctx, &ipamv1.DescribeVpcsRequest{})
			return err
		}, codes.Unauthenticated, apierr.ReasonAuthFailure},
		{"vpc empty name", nil, vpc(c, "", "10.1.0.0/16"), codes.InvalidArgument, apierr.ReasonEmpty},
		{"vpc blank name", nil, vpc(c, "   ", "10.1.0.0/16"), codes.InvalidArgument, apierr.ReasonEmpty},
		{"vpc name 61 characters", nil, vpc(c, long, "10.1.0.0/16"), codes.InvalidArgument, apierr.ReasonTooLong},
		{"vpc malformed cidr", nil, vpc(c, "v", "10.0.0/16"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"vpc mask over 32", nil, vpc(c, "v", "10.0.0.0/33"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"vpc ipv6 cidr", nil, vpc(c, "v", "fd00::/48"), codes.InvalidArgument, apierr.ReasonNotIPv4},
		{"vpc host bits set", nil, vpc(c, "v", "10.1.0.1/16"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"vpc public block", nil, vpc(c, "v", "8.8.0.0/16"), codes.InvalidArgument, apierr.ReasonCidrNotPrivate},
		{"vpc /8 too large", nil, vpc(c, "v", "10.0.0.0/8"), codes.InvalidArgument, apierr.ReasonRange},
		{"vpc /29 too small", nil, vpc(c, "v", "10.1.0.0/29"), codes.InvalidArgument, apierr.ReasonRange},
		{"delete vpc malformed id", nil, deleteVpc(c, "vpc-NOPE"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"delete vpc unknown", nil, deleteVpc(c, "vpc-00000000"), codes.NotFound, apierr.ReasonResourceNotFound},
		{"delete vpc of another account", nil, deleteVpc(c, w.otherVpc), codes.NotFound, apierr.ReasonResourceNotFound},
		{"delete vpc with subnets", nil, deleteVpc(c, w.vpc), codes.FailedPrecondition, apierr.ReasonResourceInUse},
		{"subnet unknown vpc", nil, subnet(c, "vpc-00000000", "10.0.9.0/24"), codes.NotFound, apierr.ReasonResourceNotFound},
		{"subnet in another account's vpc", nil, subnet(c, w.otherVpc, "10.0.9.0/24"), codes.NotFound, apierr.ReasonResourceNotFound},
		{"subnet outside vpc", nil, subnet(c, w.vpc, "10.1.0.0/24"), codes.InvalidArgument, apierr.ReasonSubnetRange},
		{"subnet overlapping sibling", nil, subnet(c, w.vpc, "10.0.0.128/25"), codes.InvalidArgument, apierr.ReasonSubnetConflict},
		{"subnet containing sibling", nil, subnet(c, w.vpc, "10.0.0.0/22"), codes.InvalidArgument, apierr.ReasonSubnetConflict},
		{"subnet /15", nil, subnet(c, w.vpc, "10.0.0.0/15"), codes.InvalidArgument, apierr.ReasonRange},
		{"subnet /30", nil, subnet(c, w.vpc, "10.0.9.0/30"), codes.InvalidArgument, apierr.ReasonRange},
		{"subnet ipv6", nil, subnet(c, w.vpc, "fd00::/64"), codes.InvalidArgument, apierr.ReasonNotIPv4},
		{"subnet malformed vpc id", nil, subnet(c, "vpc_1", "10.0.9.0/24"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"delete subnet with addresses", nil, deleteSubnet(c, w.subnetA), codes.FailedPrecondition, apierr.ReasonResourceInUse},
		{"delete subnet unknown", nil, deleteSubnet(c, "subnet-00000000"), codes.NotFound, apierr.ReasonResourceNotFound},
		{"delete subnet of another account", nil, deleteSubnet(c, w.otherSubnet), codes.NotFound, apierr.ReasonResourceNotFound},
		{"instance empty host", nil, instance(c, w.subnetA, "", ""), codes.InvalidArgument, apierr.ReasonEmpty},
		{"instance name too long", nil, func(ctx context.Context) error {
			_, err := c.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: long, SubnetId: w.subnetA, HostId: "h"})
			return err
		}, codes.InvalidArgument, apierr.ReasonTooLong},
		{"instance unknown subnet", nil, instance(c, "subnet-00000000", "h", ""), codes.NotFound, apierr.ReasonResourceNotFound},
		{"instance in another account's subnet", nil, instance(c, w.otherSubnet, "h", ""), codes.NotFound, apierr.ReasonResourceNotFound},
		{"instance ip outside subnet", nil, instance(c, w.subnetA, "h", "10.0.1.5"), codes.InvalidArgument, apierr.ReasonRange},
		{"instance ip is network address", nil, instance(c, w.subnetA, "h", "10.0.0.0"), codes.InvalidArgument, apierr.ReasonReserved},
		{"instance ip is gateway", nil, instance(c, w.subnetA, "h", "10.0.0.1"), codes.InvalidArgument, apierr.ReasonReserved},
		{"instance ip is broadcast", nil, instance(c, w.subnetA, "h", "10.0.0.255"), codes.InvalidArgument, apierr.ReasonReserved},
		{"instance ip taken", nil, instance(c, w.subnetA, "h", w.primaryIP), codes.AlreadyExists, apierr.ReasonOccupied},
		{"instance ip malformed", nil, instance(c, w.subnetA, "h", "10.0.0.300"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"instance ip ipv6", nil, instance(c, w.subnetA, "h", "fd00::5"), codes.InvalidArgument, apierr.ReasonNotIPv4},
		{"instance in full subnet", nil, instance(c, w.fullSubnet, "h", ""), codes.ResourceExhausted, apierr.ReasonResourceInsufficient},
		{"eni empty name", nil, func(ctx context.Context) error {
			_, err := c.CreateNetworkInterface(ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: w.subnetA})
			return err
		}, codes.InvalidArgument, apierr.ReasonEmpty},
		{"eni ip taken", nil, func(ctx context.Context) error {
			_, err := c.CreateNetworkInterface(ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: w.subnetA, NetworkInterfaceName: "e", PrivateIpAddress: w.plainIP})
			return err
		}, codes.AlreadyExists, apierr.ReasonOccupied},
		{"attach already attached", nil, attach(c, w.primaryEni, w.instance), codes.FailedPrecondition, apierr.ReasonAttached},
		{"attach across vpcs", nil, attach(c, w.spareEni, w.instance2), codes.InvalidArgument, apierr.ReasonVpcMismatch},
		{"attach another account's eni", nil, attach(c, w.otherEni, w.instance), codes.NotFound, apierr.ReasonResourceNotFound},
		{"attach unknown instance", nil, attach(c, w.spareEni, "ins-00000000"), codes.NotFound, apierr.ReasonResourceNotFound},
		{"attach malformed instance id", nil, attach(c, w.spareEni, "i-1"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"detach primary eni", nil, detach(c, w.primaryEni), codes.FailedPrecondition, apierr.ReasonPrimaryEni},
		{"detach detached eni", nil, detach(c, w.spareEni), codes.FailedPrecondition, apierr.ReasonNotAttached},
		{"delete attached eni", nil, deleteEni(c, w.attachedEni), codes.FailedPrecondition, apierr.ReasonAttached},
		{"delete primary eni", nil, deleteEni(c, w.primaryEni), codes.FailedPrecondition, apierr.ReasonPrimaryEni},
		{"delete eni with an eip bound", nil, deleteEni(c, w.boundEni), codes.FailedPrecondition, apierr.ReasonAddressBound},
		{"delete eni unknown", nil, deleteEni(c, "eni-00000000"), codes.NotFound, apierr.ReasonResourceNotFound},
		{"delete eni malformed id", nil, deleteEni(c, "eni-1"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"delete another account's eni", nil, deleteEni(c, w.otherEni), codes.NotFound, apierr.ReasonResourceNotFound},
		{"another account deletes my detached eni", as(other), deleteEni(c, w.spareEni), codes.NotFound, apierr.ReasonResourceNotFound},
		{"delete instance with an eni attached", nil, deleteInstance(c, w.instance), codes.FailedPrecondition, apierr.ReasonAttached},
		{"delete instance with an eip on its primary eni", nil, deleteInstance(c, w.instance2), codes.FailedPrecondition, apierr.ReasonAddressBound},
		{"delete instance unknown", nil, deleteInstance(c, "ins-00000000"), codes.NotFound, apierr.ReasonResourceNotFound},
		{"delete instance malformed id", nil, deleteInstance(c, "i-1"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"delete another account's instance", nil, deleteInstance(c, w.otherInstance), codes.NotFound, apierr.ReasonResourceNotFound},
		{"allocate outside subnet", nil, allocate(c, w.subnetA, "10.0.3.1", 0), codes.InvalidArgument, apierr.ReasonRange},
		{"allocate gateway", nil, allocate(c, w.subnetA, "10.0.0.1", 0), codes.InvalidArgument, apierr.ReasonReserved},
		{"allocate taken", nil, allocate(c, w.subnetA, w.plainIP, 0), codes.AlreadyExists, apierr.ReasonOccupied},
		{"allocate in full subnet", nil, allocate(c, w.fullSubnet, "", 0), codes.ResourceExhausted, apierr.ReasonResourceInsufficient},
		{"allocate ttl over an hour", nil, allocate(c, w.subnetA, "", 3601), codes.InvalidArgument, apierr.ReasonRange},
		{"allocate in another account's subnet", nil, allocate(c, w.otherSubnet, "", 0), codes.NotFound, apierr.ReasonResourceNotFound},
		{"commit with a wrong token", nil, func(ctx context.Context) error {
			_, err := c.CommitPrivateIpAddress(ctx, &ipamv1.CommitPrivateIpAddressRequest{SubnetId: w.subnetA, IpAddress: w.plainIP, ReservationToken: "nope"})
			return err
		}, codes.FailedPrecondition, apierr.ReasonReservationExpired},
		{"commit nothing", nil, func(ctx context.Context) error {
			_, err := c.CommitPrivateIpAddress(ctx, &ipamv1.CommitPrivateIpAddressRequest{SubnetId: w.subnetA, IpAddress: w.freeIP, ReservationToken: "nope"})
			return err
		}, codes.FailedPrecondition, apierr.ReasonReservationExpired},
		{"release an eni's primary ip", nil, release(c, w.subnetA, w.primaryIP), codes.FailedPrecondition, apierr.ReasonAddressInUse},
		{"allocate for a forged eni holder", nil, func(ctx context.Context) error {
			_, err := c.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: w.subnetA, Owner: "eni-aaaaaaaa"})
			return err
		}, codes.FailedPrecondition, apierr.ReasonAddressInUse},
		{"allocate for a forged havip holder, in a batch", nil, func(ctx context.Context) error {
			_, err := c.AllocatePrivateIpAddresses(ctx, &ipamv1.AllocatePrivateIpAddressesRequest{SubnetId: w.subnetA, Owners: []string{"mine", "havip-aaaaaaaa"}})
			return err
		}, codes.FailedPrecondition, apierr.ReasonAddressInUse},
		{"propose for no owner", nil, func(ctx context.Context) error {
			_, err := c.ProposePrivateIpAddresses(ctx, &ipamv1.ProposePrivateIpAddressesRequest{SubnetId: w.subnetA, Extra: 5})
			return err
		}, codes.InvalidArgument, apierr.ReasonRange},
		{"propose over 100 addresses", nil, func(ctx context.Context) error {
			_, err := c.ProposePrivateIpAddresses(ctx, &ipamv1.ProposePrivateIpAddressesRequest{SubnetId: w.subnetA, Owners: []string{"a", "b"}, Extra: 99})
			return err
		}, codes.InvalidArgument, apierr.ReasonRange},
		{"propose in a full subnet", nil, func(ctx context.Context) error {
			_, err := c.ProposePrivateIpAddresses(ctx, &ipamv1.ProposePrivateIpAddressesRequest{SubnetId: w.fullSubnet, Owners: []string{"a"}})
			return err
		}, codes.ResourceExhausted, apierr.ReasonResourceInsufficient},
		{"propose in another account's subnet", nil, func(ctx context.Context) error {
			_, err := c.ProposePrivateIpAddresses(ctx, &ipamv1.ProposePrivateIpAddressesRequest{SubnetId: w.otherSubnet, Owners: []string{"a"}})
			return err
		}, codes.NotFound, apierr.ReasonResourceNotFound},
		{"propose with a malformed subnet id", nil, func(ctx context.Context) error {
			_, err := c.ProposePrivateIpAddresses(ctx, &ipamv1.ProposePrivateIpAddressesRequest{SubnetId: "subnet-1", Owners: []string{"a"}})
			return err
		}, codes.InvalidArgument, apierr.ReasonMalformed},
		{"commit a reservation to a forged holder", nil, func(ctx context.Context) error {
			r, err := c.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: w.subnetA, Owner: "eni-aaaaaaaa", ReservationTtlSeconds: 60})
			if err != nil {
				return err
			}
			_, err = c.CommitPrivateIpAddress(ctx, &ipamv1.CommitPrivateIpAddressRequest{SubnetId: w.subnetA, IpAddress: r.GetAddress().GetIpAddress(), ReservationToken: r.GetAddress().GetReservationToken(), Owner: "eni-aaaaaaaa"})
			if _, rerr := c.ReleasePrivateIpAddress(ctx, &ipamv1.ReleasePrivateIpAddressRequest{SubnetId: w.subnetA, IpAddress: r.GetAddress().GetIpAddress()}); rerr != nil {
				return fmt.Errorf("the reservation stays releasable: %w", rerr)
			}
			return err
		}, codes.FailedPrecondition, apierr.ReasonAddressInUse},
		{"release a free address", nil, release(c, w.subnetA, w.freeIP), codes.NotFound, apierr.ReasonResourceNotFound},
		{"release in another account", as(other), release(c, w.subnetA, w.plainIP), codes.NotFound, apierr.ReasonResourceNotFound},
		{"describe unknown filter", nil, func(ctx context.Context) error {
			_, err := c.DescribeSubnets(ctx, &ipamv1.DescribeSubnetsRequest{Filters: []*ipamv1.Filter{{Name: "colour", Values: []string{"red"}}}})
			return err
		}, codes.InvalidArgument, apierr.ReasonFilterInvalidKey},
		{"describe ids and filters", nil, func(ctx context.Context) error {
			_, err := c.DescribeVpcs(ctx, &ipamv1.DescribeVpcsRequest{VpcIds: []string{w.vpc}, Filters: []*ipamv1.Filter{{Name: "vpc-name", Values: []string{"main"}}}})
			return err
		}, codes.InvalidArgument, apierr.ReasonCoexist},
		{"describe limit over 100", nil, func(ctx context.Context) error {
			_, err := c.DescribeInstances(ctx, &ipamv1.DescribeInstancesRequest{Limit: 101})
			return err
		}, codes.InvalidArgument, apierr.ReasonLimitExceeded},
		{"describe unknown id", nil, func(ctx context.Context) error {
			_, err := c.DescribeNetworkInterfaces(ctx, &ipamv1.DescribeNetworkInterfacesRequest{NetworkInterfaceIds: []string{"eni-00000000"}})
			return err
		}, codes.NotFound, apierr.ReasonResourceNotFound},
		{"describe another account's id", nil, func(ctx context.Context) error {
			_, err := c.DescribeNetworkInterfaces(ctx, &ipamv1.DescribeNetworkInterfacesRequest{NetworkInterfaceIds: []string{w.otherEni}})
			return err
		}, codes.NotFound, apierr.ReasonResourceNotFound},
	}
	before := snapshot(t, c, account)
	beforeOther := snapshot(t, c, other)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cctx := tc.ctx
			if cctx == nil {
				cctx = ctx
			}
			err := tc.call(cctx)
			if status.Code(err) != tc.code || apierr.Reason(err) != tc.reason {
				t.Fatalf("got %v (reason %q), want %v %s", err, apierr.Reason(err), tc.code, tc.reason)
			}
			if st, _ := status.FromError(err); st.Message() == "" {
				t.Errorf("no message in %v", err)
			}
			if diff := cmp.Diff(before, snapshot(t, c, account), protocmp.Transform()); diff != "" {
				t.Errorf("state changed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(beforeOther, snapshot(t, c, other), protocmp.Transform()); diff != "" {
				t.Errorf("other account's state changed (-want +got):\n%s", diff)
			}
		})
	}
}

func vpc(c ipamv1.IpamServiceClient, name, cidr string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: name, CidrBlock: cidr})
		return err
	}
}

func deleteVpc(c ipamv1.IpamServiceClient, id string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.DeleteVpc(ctx, &ipamv1.DeleteVpcRequest{VpcId: id})
		return err
	}
}

func subnet(c ipamv1.IpamServiceClient, vpc, cidr string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: cidr})
		return err
	}
}

func deleteSubnet(c ipamv1.IpamServiceClient, id string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.DeleteSubnet(ctx, &ipamv1.DeleteSubnetRequest{SubnetId: id})
		return err
	}
}

func instance(c ipamv1.IpamServiceClient, subnet, host, ip string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "i", SubnetId: subnet, HostId: host, PrivateIpAddress: ip})
		return err
	}
}

func attach(c ipamv1.IpamServiceClient, eni, ins string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.AttachNetworkInterface(ctx, &ipamv1.AttachNetworkInterfaceRequest{NetworkInterfaceId: eni, InstanceId: ins})
		return err
	}
}

func detach(c ipamv1.IpamServiceClient, eni string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.DetachNetworkInterface(ctx, &ipamv1.DetachNetworkInterfaceRequest{NetworkInterfaceId: eni})
		return err
	}
}

func deleteEni(c ipamv1.IpamServiceClient, eni string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.DeleteNetworkInterface(ctx, &ipamv1.DeleteNetworkInterfaceRequest{NetworkInterfaceId: eni})
		return err
	}
}

func deleteInstance(c ipamv1.IpamServiceClient, ins string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.DeleteInstance(ctx, &ipamv1.DeleteInstanceRequest{InstanceId: ins})
		return err
	}
}

func allocate(c ipamv1.IpamServiceClient, subnet, ip string, ttl uint32) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: subnet, IpAddress: ip, ReservationTtlSeconds: ttl})
		return err
	}
}

func release(c ipamv1.IpamServiceClient, subnet, ip string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.ReleasePrivateIpAddress(ctx, &ipamv1.ReleasePrivateIpAddressRequest{SubnetId: subnet, IpAddress: ip})
		return err
	}
}
