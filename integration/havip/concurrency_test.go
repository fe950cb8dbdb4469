package havip_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/records"
)

// TestConcurrentCreates: 32 creates with distinct tokens in a /27 (29 free addresses): 29 win,
// 3 get ResourceInsufficient, no VIP twice. Then 32 creates with one token: one HAVIP.
func TestConcurrentCreates(t *testing.T) {
	t.Parallel()
	c := replica(t)
	account := unique("acct-race")
	ctx := as(account)
	n := buildNet(t, c, account, "10.0.0.0/27") // 29 usable; the two CVMs and three ENIs hold 5
	free := int(available(t, c, account, n.subnet))

	var mu sync.Mutex
	vips := map[string]int{}
	var full, other int
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "h", ClientToken: fmt.Sprintf("tok-%d", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				vips[r.GetHavip().GetVip()]++
			case apierr.Reason(err) == apierr.ReasonResourceInsufficient:
				full++
			default:
				other++
				t.Errorf("create: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(vips) != free || full != 32-free || other != 0 {
		t.Errorf("%d distinct VIPs, %d ResourceInsufficient; want %d and %d", len(vips), full, free, 32-free)
	}
	for vip, k := range vips {
		if k != 1 {
			t.Errorf("VIP %s given to %d HAVIPs", vip, k)
		}
	}
	if got := available(t, c, account, n.subnet); got != 0 {
		t.Errorf("available %d after filling", got)
	}

	// One token, 32 callers, in a roomier subnet: one HAVIP, and every caller gets it.
	m := buildNet(t, c, account+"-token", "10.0.0.0/24")
	before := available(t, c, account+"-token", m.subnet)
	tctx := as(account + "-token")
	ids := map[string]int{}
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.havip.CreateHaVip(tctx, &havipv1.CreateHaVipRequest{VpcId: m.vpc, SubnetId: m.subnet, HavipName: "once", ClientToken: "the-token"})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("create with a shared token: %v", err)
				return
			}
			ids[r.GetHavip().GetHavipId()]++
		}()
	}
	wg.Wait()
	all := etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(c.havip.DescribeHaVips(tctx, &havipv1.DescribeHaVipsRequest{}))
	if len(ids) != 1 || all.GetTotalCount() != 1 {
		t.Errorf("one token made %d HAVIPs (answers %v)", all.GetTotalCount(), ids)
	}
	if got := available(t, c, account+"-token", m.subnet); got != before-1 {
		t.Errorf("available %d, want %d: the losers' reservations were not returned", got, before-1)
	}
}

// TestConcurrentCreatesAcrossReplicas: two replicas (each with an ipamd and a havipd of its
// own, so that each ipamd proposes addresses without knowing the other's proposals) take turns
// creating 120 HAVIPs at once in a /26 that has 56 free addresses. Proposals collide and run
// out, and creates fall back to reservations: still exactly 56 win, with 56 distinct VIPs, the
// rest get ResourceInsufficient, and every address of the subnet is held by an ENI or by the
// HAVIP whose VIP it is.
func TestConcurrentCreatesAcrossReplicas(t *testing.T) {
	t.Parallel()
	replicas := []clients{replica(t), replica(t)}
	account := unique("acct-replicas")
	ctx := as(account)
	n := buildNet(t, replicas[0], account, "10.0.0.0/26") // 61 usable; the two CVMs and three ENIs hold 5
	free := int(available(t, replicas[0], account, n.subnet))

	var mu sync.Mutex
	byVIP := map[string]string{} // VIP → HAVIP
	var full int
	var wg sync.WaitGroup
	for i := range 120 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := replicas[i%2].havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "h"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				if other, dup := byVIP[r.GetHavip().GetVip()]; dup {
					t.Errorf("VIP %s given to %s and %s", r.GetHavip().GetVip(), other, r.GetHavip().GetHavipId())
				}
				byVIP[r.GetHavip().GetVip()] = r.GetHavip().GetHavipId()
			case apierr.Reason(err) == apierr.ReasonResourceInsufficient:
				full++
			default:
				t.Errorf("create: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(byVIP) != free || full != 120-free {
		t.Errorf("%d HAVIPs, %d ResourceInsufficient; want %d and %d", len(byVIP), full, free, 120-free)
	}
	addrs := etcdtest.Must[*ipamv1.DescribePrivateIpAddressesResponse](t)(replicas[1].ipam.DescribePrivateIpAddresses(ctx, &ipamv1.DescribePrivateIpAddressesRequest{SubnetId: n.subnet, Limit: 100}))
	var held int
	for _, a := range addrs.GetAddressSet() {
		if !strings.HasPrefix(a.GetOwner(), "havip-") {
			continue
		}
		held++
		if byVIP[a.GetIpAddress()] != a.GetOwner() {
			t.Errorf("%s is held by %s, but its HAVIP is %q", a.GetIpAddress(), a.GetOwner(), byVIP[a.GetIpAddress()])
		}
	}
	if held != len(byVIP) {
		t.Errorf("%d addresses held by HAVIPs, want %d", held, len(byVIP))
	}
}

// TestPaging: 250 HAVIPs paged through come back each exactly once, oldest first.
func TestPaging(t *testing.T) {
	t.Parallel()
	c := replica(t)
	account := unique("acct-hv-paging")
	ctx := as(account)
	n := buildNet(t, c, account, "10.0.0.0/23")
	var want []string
	for range 250 {
		want = append(want, etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "p"})).GetHavip().GetHavipId())
	}
	for _, limit := range []uint32{100, 33} {
		var got []string
		for off := uint32(0); off < 300; off += limit {
			r := etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{Offset: off, Limit: limit, Filters: []*havipv1.Filter{{Name: "vpc-id", Values: []string{n.vpc}}}}))
			if r.GetTotalCount() != 250 {
				t.Fatalf("total %d", r.GetTotalCount())
			}
			for _, h := range r.GetHavipSet() {
				got = append(got, h.GetHavipId())
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("limit %d: paging returned %d HAVIPs, not each once in creation order", limit, len(got))
		}
	}
}

// TestStateFollowsOwnership: the HAVIP shows BIND with the owner the ARP broker records, and
// UNBIND again when that record's lease ends.
func TestStateFollowsOwnership(t *testing.T) {
	t.Parallel()
	c := replica(t)
	account := unique("acct-owner")
	ctx := as(account)
	n := buildNet(t, c, account, "10.0.0.0/24")
	hv := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "o"})).GetHavip()
	cli := etcdtest.Client(t, etcdEndpoint)
	lease, err := cli.Grant(context.Background(), 60)
	if err != nil {
		t.Fatal(err)
	}
	changed := time.Now().UTC().Truncate(time.Millisecond)
	rec := fmt.Sprintf(`{"havip_id":%q,"network_interface_id":%q,"instance_id":%q,"host_id":"host-1","changed":%q}`, hv.GetHavipId(), n.eni1, n.cvm1, changed.Format(time.RFC3339Nano))
	put, err := cli.Put(context.Background(), records.OwnerKey(hv.GetHavipId()), rec, clientv3.WithLease(lease.ID))
	if err != nil {
		t.Fatal(err)
	}
	got := etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{hv.GetHavipId()}})).GetHavipSet()[0]
	if got.GetState() != "BIND" || got.GetNetworkInterfaceId() != n.eni1 || got.GetInstanceId() != n.cvm1 || got.GetHostId() != "host-1" ||
		!got.GetFlushedTime().AsTime().Equal(changed) || got.GetOwnerRevision() != put.Header.Revision {
		t.Errorf("after an owner change: %v", got)
	}
	if _, err := cli.Revoke(context.Background(), lease.ID); err != nil {
		t.Fatal(err)
	}
	got = etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{hv.GetHavipId()}})).GetHavipSet()[0]
	if got.GetState() != "UNBIND" || got.GetNetworkInterfaceId() != "" {
		t.Errorf("after the owner's lease ended: %v", got)
	}
	// Deleting a HAVIP ends its ownership too.
	if _, err := cli.Put(context.Background(), records.OwnerKey(hv.GetHavipId()), rec); err != nil {
		t.Fatal(err)
	}
	etcdtest.Must[*havipv1.DeleteHaVipResponse](t)(c.havip.DeleteHaVip(ctx, &havipv1.DeleteHaVipRequest{HavipId: hv.GetHavipId()}))
	if r, err := cli.Get(context.Background(), records.OwnerKey(hv.GetHavipId())); err != nil || len(r.Kvs) != 0 {
		t.Errorf("ownership outlived its HAVIP: %v %v", r, err)
	}
}

// TestDeleteRacesEIPBind: a HAVIP delete and an EIP bind (as eipd writes it: one transaction
// that requires the HAVIP to exist) race; never does a binding point at a deleted HAVIP.
func TestDeleteRacesEIPBind(t *testing.T) {
	t.Parallel()
	c := replica(t)
	account := unique("acct-del-race")
	ctx := as(account)
	n := buildNet(t, c, account, "10.0.0.0/24")
	cli := etcdtest.Client(t, etcdEndpoint)
	for i := range 40 {
		hv := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "r"})).GetHavip()
		id := hv.GetHavipId()
		var wg sync.WaitGroup
		var delErr error
		var bound bool
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, delErr = c.havip.DeleteHaVip(ctx, &havipv1.DeleteHaVipRequest{HavipId: id})
		}()
		go func() {
			defer wg.Done()
			resp, err := cli.Txn(context.Background()).If(
				clientv3.Compare(clientv3.Version(records.HaVipKey(id)), ">", 0),
				clientv3.Compare(clientv3.Version(records.HaVipAddresses+id), "=", 0),
			).Then(clientv3.OpPut(records.HaVipAddresses+id, fmt.Sprintf(`{"address_id":"eip-%08d","address_ip":"203.0.113.1"}`, i))).Commit()
			if err != nil {
				t.Error(err)
				return
			}
			bound = resp.Succeeded
		}()
		wg.Wait()
		havip, _ := cli.Get(context.Background(), records.HaVipKey(id), clientv3.WithCountOnly())
		binding, _ := cli.Get(context.Background(), records.HaVipAddresses+id, clientv3.WithCountOnly())
		switch {
		case binding.Count > 0 && havip.Count == 0:
			t.Fatalf("round %d: an EIP is bound to deleted HAVIP %s", i, id)
		case delErr == nil && bound:
			t.Fatalf("round %d: both the delete and the bind won", i)
		case delErr != nil && (status.Code(delErr) != codes.FailedPrecondition || !bound):
			t.Fatalf("round %d: delete failed with %v (bound %v)", i, delErr, bound)
		}
	}
}
