package kvcache_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/kvcache"
)

// TestCacheFollowsThroughCompaction: a cache sees puts and deletes, Sync makes reads as fresh as
// a linearizable read, and a compaction of the revisions it follows (which cuts its watch when
// the watch is behind; then it reloads) leaves it exact, its hooks told of every difference.
func TestCacheFollowsThroughCompaction(t *testing.T) {
	_, cli := etcdtest.Fresh(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := map[string]string{} // what the hooks say the contents are
	decode := func(_ string, v []byte) (string, error) { return string(v), nil }
	hook := func(prev, cur *kvcache.Item[string], _ int64) {
		if cur == nil {
			delete(seen, prev.Key)
		} else {
			seen[cur.Key] = cur.Value
		}
	}
	c := kvcache.New(cli, kvcache.NewRevisions(cli), "/t/", decode, etcdtest.Quiet, hook)
	if _, err := cli.Put(ctx, "/t/a", "1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(want map[string]string) {
		t.Helper()
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		c.View(func(items map[string]*kvcache.Item[string]) {
			for k, it := range items {
				got[k] = it.Value
			}
		})
		var hooked map[string]string
		c.View(func(map[string]*kvcache.Item[string]) { hooked = clone(seen) })
		if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(hooked) != fmt.Sprint(want) {
			t.Fatalf("cache %v, hooks %v, want %v", got, hooked, want)
		}
	}
	check(map[string]string{"/t/a": "1"})
	if _, err := cli.Put(ctx, "/t/b", "2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, "/t/a"); err != nil {
		t.Fatal(err)
	}
	check(map[string]string{"/t/b": "2"}) // read-your-writes right after the writes

	// Writes, then a compaction right behind them, possibly before the watch delivered them.
	var last *clientv3.PutResponse
	var err error
	for i := range 50 {
		if last, err = cli.Put(ctx, fmt.Sprintf("/t/k%d", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx, "/t/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, last.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/t/z", "end"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/t/z": "end"}
	for i := range 50 {
		want[fmt.Sprintf("/t/k%d", i)] = "x"
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Get("/t/z"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache never caught up after the compaction")
		}
	}
	check(want)
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestSharedCache: services sharing one cache each start it, at once: it loads once. A hook with
// a loader gets the first load in one call, in creation order, and a hook added after the load
// learns of every item first, as creates in creation order; then both see every change.
func TestSharedCache(t *testing.T) {
	_, cli := etcdtest.Fresh(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, k := range []string{"/s/b", "/s/a", "/s/c"} { // created in this order, not key order
		if _, err := cli.Put(ctx, k, "1"); err != nil {
			t.Fatal(err)
		}
	}
	decodes := 0
	decode := func(_ string, v []byte) (string, error) { decodes++; return string(v), nil }
	var early, late []string // what each hook was told, in order
	tell := func(to *[]string) kvcache.Hook[string] {
		return func(prev, cur *kvcache.Item[string], _ int64) {
			switch {
			case cur == nil:
				*to = append(*to, "-"+prev.Key)
			case prev == nil:
				*to = append(*to, "+"+cur.Key)
			default:
				*to = append(*to, "~"+cur.Key)
			}
		}
	}
	c := kvcache.New(cli, kvcache.NewRevisions(cli), "/s/", decode, etcdtest.Quiet)
	c.AddHook(tell(&early), func(items []*kvcache.Item[string]) {
		for _, it := range items {
			early = append(early, "load "+it.Key)
		}
	})
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- c.Start(ctx) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	c.AddHook(tell(&late), nil)
	if _, err := cli.Delete(ctx, "/s/a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var gotEarly, gotLate []string
	c.View(func(map[string]*kvcache.Item[string]) { gotEarly, gotLate = slices.Clone(early), slices.Clone(late) })
	want := []string{"+/s/b", "+/s/a", "+/s/c", "-/s/a"}
	wantEarly := []string{"load /s/b", "load /s/a", "load /s/c", "-/s/a"}
	if !slices.Equal(gotEarly, wantEarly) || !slices.Equal(gotLate, want) {
		t.Fatalf("hook added before the start saw %v, after it %v; want %v and %v", gotEarly, gotLate, wantEarly, want)
	}
	if decodes != 3 {
		t.Fatalf("%d values decoded, want 3: two starts loaded it twice", decodes)
	}
}
