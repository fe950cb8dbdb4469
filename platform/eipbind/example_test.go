package eipbind_test

import (
	"context"
	"fmt"
	"net/netip"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/eipbind"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
)

// Binding an EIP to a HAVIP writes both sides in one transaction: the EIP record names the HAVIP
// and its VIP, and the HAVIP's binding record names the EIP. Unbinding clears both.
func ExampleBindHaVip() {
	cli, stop, err := etcdtest.StartClient()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()

	// The records havipd and eipd would have written.
	const account = "acct-1"
	h := records.HaVip{ID: "havip-0a1b2c3d", Account: account, SubnetID: "subnet-0a1b2c3d", VIP: netip.MustParseAddr("10.0.1.10")}
	e := records.Eip{ID: "eip-0a1b2c3d", Account: account, IP: "203.0.113.7"}
	if _, err := cli.Txn(ctx).Then(
		clientv3.OpPut(records.HaVipKey(h.ID), records.EncodeHaVip(h)),
		clientv3.OpPut(records.EipKey(e.IP), kvcache.EncodeJSON(e)),
	).Commit(); err != nil {
		fmt.Println(err)
		return
	}
	show := func() {
		eip, _ := read[records.Eip](ctx, cli, records.EipKey(e.IP))
		fmt.Printf("  EIP %s: havip=%q private_ip=%q\n", eip.ID, eip.HaVipID, eip.PrivateIP)
		if b, ok := read[records.AddressBinding](ctx, cli, records.HaVipAddressKey(h.ID)); ok {
			fmt.Printf("  HAVIP %s: EIP %s (%s)\n", h.ID, b.AddressID, b.AddressIP)
		} else {
			fmt.Printf("  HAVIP %s: no EIP\n", h.ID)
		}
	}

	bound, _, err := eipbind.BindHaVip(ctx, cli, account, h.ID, e.IP)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("bound", bound.ID, "to", bound.HaVipID)
	show()

	// The EIP is bound now: a second bind is refused with the reason the API returns.
	_, _, err = eipbind.BindHaVip(ctx, cli, account, h.ID, e.IP)
	fmt.Println("bind again:", apierr.Reason(err))

	unbound, _, err := eipbind.UnbindHaVip(ctx, cli, account, h.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("unbound", unbound.ID)
	show()
	// Output:
	// bound eip-0a1b2c3d to havip-0a1b2c3d
	//   EIP eip-0a1b2c3d: havip="havip-0a1b2c3d" private_ip="10.0.1.10"
	//   HAVIP havip-0a1b2c3d: EIP eip-0a1b2c3d (203.0.113.7)
	// bind again: UnsupportedOperation.AddressBound
	// unbound eip-0a1b2c3d
	//   EIP eip-0a1b2c3d: havip="" private_ip=""
	//   HAVIP havip-0a1b2c3d: no EIP
}

// read returns the record at key, decoded, and whether it exists.
func read[T any](ctx context.Context, cli *clientv3.Client, key string) (T, bool) {
	var v T
	resp, err := cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return v, false
	}
	v, err = kvcache.DecodeJSON[T](key, resp.Kvs[0].Value)
	return v, err == nil
}
