package natrule

import (
	"context"
	"testing"

	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
)

// TestRulesMoveForward feeds the hooks as the two caches would — each in its own revision order,
// the owner watch lagging behind the EIP watch — and checks the published rules of the EIP: each
// newer than the last, with the backend of the latest ownership, and no publish for a rename.
func TestRulesMoveForward(t *testing.T) {
	tab := New(func(string) string { return "host-of-cvm" })
	ownerHook := tab.OwnerHook(func(key string) string { return key })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, ch := tab.Subscribe(ctx)

	eip := func(rev int64, havip, name string) *kvcache.Item[records.Eip] {
		return &kvcache.Item[records.Eip]{Key: "e", ModRevision: rev, Value: records.Eip{ID: "eip-1", IP: "203.0.113.5", Name: name, HaVipID: havip, PrivateIP: map[bool]string{true: "10.0.0.9"}[havip != ""]}}
	}
	own := func(rev int64, eni string) *kvcache.Item[records.Owner] {
		return &kvcache.Item[records.Owner]{Key: "havip-1", ModRevision: rev, Value: records.Owner{NetworkInterfaceID: eni, HostID: "h-" + eni}}
	}
	ownerHook(nil, own(5, "eni-a"), 5)   // owned before the bind
	tab.EipHook(nil, eip(3, "", "x"), 3) // allocated: no rule
	tab.EipHook(eip(3, "", "x"), eip(10, "havip-1", "x"), 10)
	tab.EipHook(eip(10, "havip-1", "x"), eip(13, "havip-1", "y"), 13) // renamed: same rule
	ownerHook(own(5, "eni-a"), own(12, "eni-b"), 12)                  // an older revision than the rename, delivered later
	ownerHook(own(12, "eni-b"), nil, 15)                              // the owner lapses
	ownerHook(nil, own(20, "eni-a"), 20)
	tab.EipHook(eip(13, "havip-1", "y"), eip(21, "", "y"), 21) // unbound
	ownerHook(own(20, "eni-a"), own(22, "eni-b"), 22)          // no longer this EIP's business

	want := []struct {
		eni       string
		bind, own int64
		removed   bool
	}{{"eni-a", 10, 5, false}, {"eni-b", 10, 12, false}, {"", 10, 15, false}, {"eni-a", 10, 20, false}, {"", 21, 0, true}}
	var last *Rule
	for i, w := range want {
		var r Rule
		select {
		case b := <-ch:
			r = b[0]
		default:
			t.Fatalf("publish %d missing", i)
		}
		if r.NetworkInterfaceID != w.eni || r.BindingRevision != w.bind || r.OwnerRevision != w.own || r.Removed != w.removed {
			t.Errorf("publish %d: %+v, want %+v", i, r, w)
		}
		if w.eni != "" && r.HostID != "h-"+w.eni {
			t.Errorf("publish %d: host %q", i, r.HostID)
		}
		if last != nil && !r.Newer(*last) {
			t.Errorf("publish %d (%+v) is not newer than %+v", i, r, *last)
		}
		last = &r
	}
	select {
	case b := <-ch:
		t.Errorf("unexpected publish %+v", b)
	default:
	}
	if _, ok := tab.Get("eip-1"); ok {
		t.Error("the unbound EIP still has a rule")
	}
}
