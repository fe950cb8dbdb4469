package ipam_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ipalloc"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/services/ipam/store"
)

// keysOf are the etcd keys an ENI's delete must remove: its record, its MAC and its address.
func keysOf(e *ipamv1.NetworkInterface) []string {
	return []string{
		records.NetworkInterfaceKey(e.GetNetworkInterfaceId()),
		store.Root + "mac/" + e.GetMacAddress(),
		records.AddressKey(e.GetSubnetId(), netip.MustParseAddr(e.GetPrimaryIpAddress())),
	}
}

// present returns which of keys exist in etcd now.
func present(t *testing.T, cli *clientv3.Client, keys ...string) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		resp, err := cli.Get(context.Background(), k, clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count > 0 {
			out = append(out, k)
		}
	}
	return out
}

// TestDeletes: an ENI, then a CVM, are deleted with everything they held (record, MAC,
// address), so the subnet's count comes back, the addresses can be taken again, and the
// subnet and VPC can be deleted.
func TestDeletes(t *testing.T) {
	t.Parallel()
	c, _ := replica(t)
	cli := etcdtest.Client(t, etcdEndpoint)
	ctx := as(unique("acct-deletes"))
	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	sn := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.0.0/28"})).GetSubnet()
	avail := func() uint64 {
		t.Helper()
		r := etcdtest.Must[*ipamv1.DescribeSubnetsResponse](t)(c.DescribeSubnets(ctx, &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{sn.GetSubnetId()}}))
		return r.GetSubnetSet()[0].GetAvailableIpAddressCount()
	}
	total := sn.GetTotalIpAddressCount()
	ins := etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "i", SubnetId: sn.GetSubnetId(), HostId: "h"}))
	insID, pe := ins.GetInstance().GetInstanceId(), ins.GetPrimaryNetworkInterface()
	eni := etcdtest.Must[*ipamv1.CreateNetworkInterfaceResponse](t)(c.CreateNetworkInterface(ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: sn.GetSubnetId(), NetworkInterfaceName: "e"})).GetNetworkInterface()
	eniID := eni.GetNetworkInterfaceId()
	etcdtest.Must[*ipamv1.AttachNetworkInterfaceResponse](t)(c.AttachNetworkInterface(ctx, &ipamv1.AttachNetworkInterfaceRequest{NetworkInterfaceId: eniID, InstanceId: insID}))
	if got := avail(); got != total-2 {
		t.Fatalf("available with a CVM and an ENI: %d, want %d", got, total-2)
	}
	allKeys := append(append(keysOf(pe), keysOf(eni)...), records.InstanceKey(insID))
	if got := present(t, cli, allKeys...); len(got) != len(allKeys) {
		t.Fatalf("keys before the deletes: %v, want %v", got, allKeys)
	}

	// While attached, neither goes; detached, the ENI goes with its address.
	if _, err := c.DeleteInstance(ctx, &ipamv1.DeleteInstanceRequest{InstanceId: insID}); apierr.Reason(err) != apierr.ReasonAttached {
		t.Fatalf("delete of a CVM with an ENI attached: %v", err)
	}
	if _, err := c.DeleteNetworkInterface(ctx, &ipamv1.DeleteNetworkInterfaceRequest{NetworkInterfaceId: eniID}); apierr.Reason(err) != apierr.ReasonAttached {
		t.Fatalf("delete of an attached ENI: %v", err)
	}
	etcdtest.Must[*ipamv1.DetachNetworkInterfaceResponse](t)(c.DetachNetworkInterface(ctx, &ipamv1.DetachNetworkInterfaceRequest{NetworkInterfaceId: eniID}))
	etcdtest.Must[*ipamv1.DeleteNetworkInterfaceResponse](t)(c.DeleteNetworkInterface(ctx, &ipamv1.DeleteNetworkInterfaceRequest{NetworkInterfaceId: eniID}))
	if got := avail(); got != total-1 {
		t.Errorf("available after the ENI's delete: %d, want %d", got, total-1)
	}
	if got := present(t, cli, keysOf(eni)...); len(got) != 0 {
		t.Errorf("the deleted ENI left %v", got)
	}
	if _, err := c.DescribeNetworkInterfaces(ctx, &ipamv1.DescribeNetworkInterfacesRequest{NetworkInterfaceIds: []string{eniID}}); status.Code(err) != codes.NotFound {
		t.Errorf("describe of the deleted ENI: %v", err)
	}

	// The CVM goes with its primary ENI and that ENI's address.
	etcdtest.Must[*ipamv1.DeleteInstanceResponse](t)(c.DeleteInstance(ctx, &ipamv1.DeleteInstanceRequest{InstanceId: insID}))
	if got := avail(); got != total {
		t.Errorf("available after the CVM's delete: %d, want %d", got, total)
	}
	if got := present(t, cli, allKeys...); len(got) != 0 {
		t.Errorf("the deletes left %v", got)
	}
	if _, err := c.DescribeInstances(ctx, &ipamv1.DescribeInstancesRequest{InstanceIds: []string{insID}}); status.Code(err) != codes.NotFound {
		t.Errorf("describe of the deleted CVM: %v", err)
	}
	if _, err := c.DescribeNetworkInterfaces(ctx, &ipamv1.DescribeNetworkInterfacesRequest{NetworkInterfaceIds: []string{pe.GetNetworkInterfaceId()}}); status.Code(err) != codes.NotFound {
		t.Errorf("describe of the deleted CVM's primary ENI: %v", err)
	}
	for name, err := range map[string]error{
		"the CVM": func() error {
			_, err := c.DeleteInstance(ctx, &ipamv1.DeleteInstanceRequest{InstanceId: insID})
			return err
		}(),
		"the ENI": func() error {
			_, err := c.DeleteNetworkInterface(ctx, &ipamv1.DeleteNetworkInterfaceRequest{NetworkInterfaceId: eniID})
			return err
		}(),
	} {
		if status.Code(err) != codes.NotFound {
			t.Errorf("second delete of %s: %v, want NotFound", name, err)
		}
	}

	// The freed addresses can be taken again, by a resource or a plain allocation.
	again := etcdtest.Must[*ipamv1.CreateNetworkInterfaceResponse](t)(c.CreateNetworkInterface(ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: sn.GetSubnetId(), NetworkInterfaceName: "again", PrivateIpAddress: pe.GetPrimaryIpAddress()})).GetNetworkInterface()
	etcdtest.Must[*ipamv1.AllocatePrivateIpAddressResponse](t)(c.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: sn.GetSubnetId(), IpAddress: eni.GetPrimaryIpAddress()}))
	etcdtest.Must[*ipamv1.ReleasePrivateIpAddressResponse](t)(c.ReleasePrivateIpAddress(ctx, &ipamv1.ReleasePrivateIpAddressRequest{SubnetId: sn.GetSubnetId(), IpAddress: eni.GetPrimaryIpAddress()}))
	etcdtest.Must[*ipamv1.DeleteNetworkInterfaceResponse](t)(c.DeleteNetworkInterface(ctx, &ipamv1.DeleteNetworkInterfaceRequest{NetworkInterfaceId: again.GetNetworkInterfaceId()}))

	// Nothing is left in the subnet: it and its VPC can be deleted.
	etcdtest.Must[*ipamv1.DeleteSubnetResponse](t)(c.DeleteSubnet(ctx, &ipamv1.DeleteSubnetRequest{SubnetId: sn.GetSubnetId()}))
	etcdtest.Must[*ipamv1.DeleteVpcResponse](t)(c.DeleteVpc(ctx, &ipamv1.DeleteVpcRequest{VpcId: vpc}))
}

// TestDeleteKeepsAnotherHoldersAddress: a delete frees its ENI's address only while the
// address is still that ENI's; an address record that names another holder stays.
func TestDeleteKeepsAnotherHoldersAddress(t *testing.T) {
	t.Parallel()
	c, _ := replica(t)
	cli := etcdtest.Client(t, etcdEndpoint)
	ctx := as(unique("acct-holder"))
	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	sn := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.0.0/24"})).GetSubnet().GetSubnetId()
	eni := etcdtest.Must[*ipamv1.CreateNetworkInterfaceResponse](t)(c.CreateNetworkInterface(ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: sn, NetworkInterfaceName: "e"})).GetNetworkInterface()
	// Corrupt state no call can make: the ENI's address record names another holder.
	akey := records.AddressKey(sn, netip.MustParseAddr(eni.GetPrimaryIpAddress()))
	resp, err := cli.Get(context.Background(), akey)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("the ENI's address record: %v %v", resp, err)
	}
	rec, err := kvcache.DecodeJSON[ipalloc.Record](akey, resp.Kvs[0].Value)
	if err != nil || rec.Owner != eni.GetNetworkInterfaceId() {
		t.Fatalf("the ENI's address record: %+v %v", rec, err)
	}
	rec.Owner = "havip-aaaaaaaa"
	if _, err := cli.Put(context.Background(), akey, kvcache.EncodeJSON(rec)); err != nil {
		t.Fatal(err)
	}
	etcdtest.Must[*ipamv1.DeleteNetworkInterfaceResponse](t)(c.DeleteNetworkInterface(ctx, &ipamv1.DeleteNetworkInterfaceRequest{NetworkInterfaceId: eni.GetNetworkInterfaceId()}))
	if got := present(t, cli, keysOf(eni)...); len(got) != 1 || got[0] != akey {
		t.Errorf("after the delete: %v, want only the other holder's %s", got, akey)
	}
}

// TestEmptyPrefixCompare pins the etcd behaviour the deletes rely on for "no EIP is bound":
// Compare(CreateRevision(prefix), "=", 0).WithPrefix() holds exactly when no key exists under
// the prefix.
func TestEmptyPrefixCompare(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Client(t, etcdEndpoint)
	ctx := context.Background()
	root := "/test/prefix-compare/" + unique("p") + "/"
	prefix := root + "eni-aaaaaaaa/"
	holds := func() bool {
		t.Helper()
		resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(prefix), "=", 0).WithPrefix()).Commit()
		if err != nil {
			t.Fatal(err)
		}
		return resp.Succeeded
	}
	put := func(k string) {
		if _, err := cli.Put(ctx, k, "eip-aaaaaaaa"); err != nil {
			t.Fatal(err)
		}
	}
	del := func(k string) {
		if _, err := cli.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		change func()
		want   bool
	}{
		{"nothing under the prefix", func() {}, true},
		{"a key beside the prefix", func() { put(root + "eni-aaaaaaaa0/10.0.0.5") }, true},
		{"the prefix without its slash", func() { put(root + "eni-aaaaaaaa") }, true},
		{"one key under it", func() { put(prefix + "10.0.0.5") }, false},
		{"two keys under it", func() { put(prefix + "10.0.0.6") }, false},
		{"one of them deleted", func() { del(prefix + "10.0.0.5") }, false},
		{"both deleted", func() { del(prefix + "10.0.0.6") }, true},
		{"the prefix itself as a key", func() { put(prefix) }, false},
	} {
		tc.change()
		if got := holds(); got != tc.want {
			t.Errorf("%s: the comparison holds = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestAttachRacesDelete: an attach and a delete of the same CVM, run at once on two replicas
// many times, never both succeed, and no ENI ends attached to a CVM that does not exist.
func TestAttachRacesDelete(t *testing.T) {
	t.Parallel()
	c1, _ := replica(t)
	c2, _ := replica(t)
	cli := etcdtest.Client(t, etcdEndpoint)
	ctx := as(unique("acct-race"))
	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c1.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	sn := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c1.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.0.0/24"})).GetSubnet().GetSubnetId()
	const rounds = 150
	var attached, deleted int
	for round := range rounds {
		ins := etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c1.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "i", SubnetId: sn, HostId: "h"})).GetInstance().GetInstanceId()
		eni := etcdtest.Must[*ipamv1.CreateNetworkInterfaceResponse](t)(c2.CreateNetworkInterface(ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: sn, NetworkInterfaceName: "e"})).GetNetworkInterface().GetNetworkInterfaceId()
		var wg sync.WaitGroup
		start := make(chan struct{})
		var attachErr, deleteErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, attachErr = c1.AttachNetworkInterface(ctx, &ipamv1.AttachNetworkInterfaceRequest{NetworkInterfaceId: eni, InstanceId: ins})
		}()
		go func() {
			defer wg.Done()
			<-start
			_, deleteErr = c2.DeleteInstance(ctx, &ipamv1.DeleteInstanceRequest{InstanceId: ins})
		}()
		close(start)
		wg.Wait()
		switch {
		case attachErr == nil && deleteErr == nil:
			t.Fatalf("round %d: both the attach and the delete of %s succeeded", round, ins)
		case attachErr == nil:
			attached++
			if apierr.Reason(deleteErr) != apierr.ReasonAttached && status.Code(deleteErr) != codes.Aborted {
				t.Fatalf("round %d: the delete after the attach: %v", round, deleteErr)
			}
		case deleteErr == nil:
			deleted++
			if status.Code(attachErr) != codes.NotFound && status.Code(attachErr) != codes.Aborted {
				t.Fatalf("round %d: the attach after the delete: %v", round, attachErr)
			}
		default:
			t.Logf("round %d: both lost: attach %v; delete %v", round, attachErr, deleteErr)
		}
		// The truth, read from etcd: an ENI attached to an instance means the instance exists.
		resp, err := cli.Get(context.Background(), records.NetworkInterfaceKey(eni))
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("round %d: read %s: %v %v", round, eni, resp, err)
		}
		e, err := kvcache.DecodeJSON[records.NetworkInterface]("", resp.Kvs[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		insExists := len(present(t, cli, records.InstanceKey(ins))) == 1
		if e.InstanceID != "" && !insExists {
			t.Fatalf("round %d: %s is attached to %s, which does not exist", round, eni, ins)
		}
		// Clean up for the next round (and to prove nothing leaks: the subnet is deleted last).
		if e.InstanceID != "" {
			etcdtest.Must[*ipamv1.DetachNetworkInterfaceResponse](t)(c1.DetachNetworkInterface(ctx, &ipamv1.DetachNetworkInterfaceRequest{NetworkInterfaceId: eni}))
		}
		etcdtest.Must[*ipamv1.DeleteNetworkInterfaceResponse](t)(c1.DeleteNetworkInterface(ctx, &ipamv1.DeleteNetworkInterfaceRequest{NetworkInterfaceId: eni}))
		if insExists {
			etcdtest.Must[*ipamv1.DeleteInstanceResponse](t)(c1.DeleteInstance(ctx, &ipamv1.DeleteInstanceRequest{InstanceId: ins}))
		}
	}
	t.Logf("%d rounds: the attach won %d, the delete won %d", rounds, attached, deleted)
	etcdtest.Must[*ipamv1.DeleteSubnetResponse](t)(c1.DeleteSubnet(ctx, &ipamv1.DeleteSubnetRequest{SubnetId: sn}))
	etcdtest.Must[*ipamv1.DeleteVpcResponse](t)(c1.DeleteVpc(ctx, &ipamv1.DeleteVpcRequest{VpcId: vpc}))
}
