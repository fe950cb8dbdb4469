package eip_test

import (
	"context"
	"net/netip"
	"sort"
	"sync"
	"testing"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/eip"
)

// TestAllocationFromPools: a pool of a /29 and a three-address range (nine addresses) under 16
// concurrent allocations: exactly nine distinct addresses, never the /29's network or
// broadcast, the rest ResourceInsufficient. Then client tokens, a multi-address allocation
// refused whole, renames, filters and paging.
func TestAllocationFromPools(t *testing.T) {
	t.Parallel() // its own pool: the other tests allocate from the default one
	c := suite(t, eip.Config{Pools: "192.0.2.8/29, 192.0.2.100-192.0.2.102"})
	ctx := tenant.Outgoing(context.Background(), "acct-pool"+ids.New(""))
	t.Cleanup(func() { // the pool is shared by every run on this etcd: give its addresses back
		r, err := c.eip.DescribeAddresses(ctx, &eipv1.DescribeAddressesRequest{Limit: 100})
		if err != nil {
			t.Error(err)
			return
		}
		var all []string
		for _, a := range r.GetAddressSet() {
			all = append(all, a.GetAddressId())
		}
		if len(all) > 0 {
			if _, err := c.eip.ReleaseAddresses(ctx, &eipv1.ReleaseAddressesRequest{AddressIds: all}); err != nil {
				t.Error(err)
			}
		}
	})
	var mu sync.Mutex
	var got []*eipv1.Address
	var full int
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.eip.AllocateAddresses(ctx, &eipv1.AllocateAddressesRequest{AddressName: "p"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				got = append(got, r.GetAddressSet()...)
			case apierr.Reason(err) == apierr.ReasonResourceInsufficient:
				full++
			default:
				t.Errorf("allocate: %v", err)
			}
		}()
	}
	wg.Wait()
	var ips []string
	for _, a := range got {
		ips = append(ips, a.GetAddressIp())
	}
	sort.Slice(ips, func(i, j int) bool { return netip.MustParseAddr(ips[i]).Less(netip.MustParseAddr(ips[j])) })
	want := []string{"192.0.2.9", "192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14", "192.0.2.100", "192.0.2.101", "192.0.2.102"}
	if len(ips) != len(want) || full != 16-len(want) {
		t.Fatalf("allocated %v, %d refused as full; want %v", ips, full, want)
	}
	for i := range want {
		if ips[i] != want[i] {
			t.Fatalf("allocated %v, want %v", ips, want)
		}
	}

	// Free three (one named twice: released once); a request for four is refused whole and
	// takes nothing.
	etcdtest.Must[*eipv1.ReleaseAddressesResponse](t)(c.eip.ReleaseAddresses(ctx, &eipv1.ReleaseAddressesRequest{AddressIds: []string{got[0].GetAddressId(), got[1].GetAddressId(), got[2].GetAddressId(), got[0].GetAddressId()}}))
	if _, err := c.eip.AllocateAddresses(ctx, &eipv1.AllocateAddressesRequest{AddressCount: 4}); apierr.Reason(err) != apierr.ReasonResourceInsufficient {
		t.Fatalf("four from three free: %v", err)
	}
	if n := etcdtest.Must[*eipv1.DescribeAddressesResponse](t)(c.eip.DescribeAddresses(ctx, &eipv1.DescribeAddressesRequest{})).GetTotalCount(); n != 6 {
		t.Fatalf("after the refused allocation the account has %d EIPs, want 6", n)
	}

	// A client token: the same request gives the same EIPs; another request with it is refused.
	first := etcdtest.Must[*eipv1.AllocateAddressesResponse](t)(c.eip.AllocateAddresses(ctx, &eipv1.AllocateAddressesRequest{AddressCount: 2, AddressName: "tok", ClientToken: "t-1"})).GetAddressSet()
	again := etcdtest.Must[*eipv1.AllocateAddressesResponse](t)(c.eip.AllocateAddresses(ctx, &eipv1.AllocateAddressesRequest{AddressCount: 2, AddressName: "tok", ClientToken: "t-1"})).GetAddressSet()
	if len(first) != 2 || len(again) != 2 || first[0].GetAddressId() != again[0].GetAddressId() || first[1].GetAddressId() != again[1].GetAddressId() {
		t.Fatalf("retried token: %v then %v", first, again)
	}
	if _, err := c.eip.AllocateAddresses(ctx, &eipv1.AllocateAddressesRequest{AddressCount: 1, AddressName: "tok", ClientToken: "t-1"}); apierr.Reason(err) != apierr.ReasonIdempotentParameterChange {
		t.Errorf("token reused for another request: %v", err)
	}
	// The token's EIPs took two of the three freed addresses (an EIP lives at its address's key):
	// each released ID stays gone, though its address now holds another EIP.
	freed := map[string]bool{got[0].GetAddressIp(): true, got[1].GetAddressIp(): true, got[2].GetAddressIp(): true}
	for _, a := range first {
		if !freed[a.GetAddressIp()] {
			t.Errorf("token EIP at %s, not a freed address", a.GetAddressIp())
		}
	}
	for _, a := range got[:3] {
		if _, err := c.eip.DescribeAddresses(ctx, &eipv1.DescribeAddressesRequest{AddressIds: []string{a.GetAddressId()}}); apierr.Reason(err) != apierr.ReasonResourceNotFound {
			t.Errorf("released %s (%s) described: %v", a.GetAddressId(), a.GetAddressIp(), err)
		}
	}

	// Rename, then filters and paging over the account's eight EIPs.
	etcdtest.Must[*eipv1.ModifyAddressAttributeResponse](t)(c.eip.ModifyAddressAttribute(ctx, &eipv1.ModifyAddressAttributeRequest{AddressId: first[0].GetAddressId(), AddressName: "renamed"}))
	filter := func(name, value string) []*eipv1.Address {
		return etcdtest.Must[*eipv1.DescribeAddressesResponse](t)(c.eip.DescribeAddresses(ctx, &eipv1.DescribeAddressesRequest{Filters: []*eipv1.Filter{{Name: name, Values: []string{value}}}})).GetAddressSet()
	}
	if r := filter("address-name", "renamed"); len(r) != 1 || r[0].GetAddressId() != first[0].GetAddressId() {
		t.Errorf("address-name filter: %v", r)
	}
	if r := filter("address-ip", first[1].GetAddressIp()); len(r) != 1 || r[0].GetAddressId() != first[1].GetAddressId() {
		t.Errorf("address-ip filter: %v", r)
	}
	if r := filter("address-status", "UNBIND"); len(r) != 8 {
		t.Errorf("address-status filter: %d EIPs, want 8", len(r))
	}
	seen := map[string]bool{}
	for off := uint32(0); off < 8; off += 3 {
		page := etcdtest.Must[*eipv1.DescribeAddressesResponse](t)(c.eip.DescribeAddresses(ctx, &eipv1.DescribeAddressesRequest{Offset: off, Limit: 3}))
		if page.GetTotalCount() != 8 {
			t.Fatalf("total %d", page.GetTotalCount())
		}
		for _, a := range page.GetAddressSet() {
			if seen[a.GetAddressId()] {
				t.Errorf("%s on two pages", a.GetAddressId())
			}
			seen[a.GetAddressId()] = true
		}
	}
	if len(seen) != 8 {
		t.Errorf("paging saw %d EIPs, want 8", len(seen))
	}
}
