package kvcache_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
)

// A service mirrors the records it reads: a cache per prefix in a group, a hook keeping an
// index, and Sync before a read that must see every write made before it.
func ExampleGroup() {
	cli, stop, err := etcdtest.StartClient()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()

	g := kvcache.NewGroup(cli)
	byVIP := map[string]string{} // VIP → HAVIP ID, kept by the hook under the cache's lock
	index := func(prev, cur *kvcache.Item[records.HaVip], _ int64) {
		if prev != nil {
			delete(byVIP, prev.Value.VIP.String())
		}
		if cur != nil {
			byVIP[cur.Value.VIP.String()] = cur.Value.ID
		}
	}
	havips := kvcache.New(cli, g.Revisions(), records.HaVips, records.DecodeHaVipAt, slog.New(slog.DiscardHandler), index)
	g.Add(havips)
	follow, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing() // the caches follow etcd until then
	if err := g.Start(follow); err != nil {
		fmt.Println(err)
		return
	}

	// Another service (havipd) writes a HAVIP.
	h := records.HaVip{ID: "havip-0a1b2c3d", Account: "acct-1", Name: "web", VIP: netip.MustParseAddr("10.0.1.10")}
	if _, err := cli.Put(ctx, records.HaVipKey(h.ID), records.EncodeHaVip(h)); err != nil {
		fmt.Println(err)
		return
	}
	if err := g.Sync(ctx); err != nil { // the cache now holds that write
		fmt.Println(err)
		return
	}
	if it, ok := havips.Get(records.HaVipKey(h.ID)); ok {
		fmt.Println(it.Value.ID, it.Value.Name, it.Value.VIP)
	}
	havips.View(func(map[string]*kvcache.Item[records.HaVip]) { fmt.Println("by VIP:", byVIP) })

	if _, err := cli.Delete(ctx, records.HaVipKey(h.ID)); err != nil {
		fmt.Println(err)
		return
	}
	if err := g.Sync(ctx); err != nil {
		fmt.Println(err)
		return
	}
	_, ok := havips.Get(records.HaVipKey(h.ID))
	fmt.Println("after the delete:", ok)
	havips.View(func(map[string]*kvcache.Item[records.HaVip]) { fmt.Println("by VIP:", byVIP) })
	// Output:
	// havip-0a1b2c3d web 10.0.1.10
	// by VIP: map[10.0.1.10:havip-0a1b2c3d]
	// after the delete: false
	// by VIP: map[]
}
