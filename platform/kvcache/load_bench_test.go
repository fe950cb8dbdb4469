package kvcache_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/kvcache"
)

// putIDs writes n keys prefix+ID (IDs of kind havip), each with a value of size bytes, 100 to a
// transaction, and returns the keys.
func putIDs(tb testing.TB, cli *clientv3.Client, prefix string, n, size int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + ids.FromNumber(ids.HaVip, uint64(i), 7)
	}
	val := strings.Repeat("v", size)
	const workers, batch = 4, 100
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for lo := w * batch; lo < n && errs[w] == nil; lo += workers * batch {
				var ops []clientv3.Op
				for _, k := range keys[lo:min(lo+batch, n)] {
					ops = append(ops, clientv3.OpPut(k, val))
				}
				_, errs[w] = cli.Txn(context.Background()).Then(ops...).Commit()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return keys
}

// TestSplitLoad: a cache split at the IDs' first characters loads exactly the keys of its
// prefix (none of a neighbouring prefix, none twice), in several pages per range, and so does a
// reload; a split at keys outside the prefix changes nothing.
func TestSplitLoad(t *testing.T) {
	_, cli := etcdtest.Fresh(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer kvcache.SetPageSize(7)()
	keys := putIDs(t, cli, "/s/", 2000, 3)
	for _, k := range []string{"/s", "/s0", "/r/havip-a", "/s/other", "/s/zzz"} { // around and inside the prefix, outside the IDs
		if _, err := cli.Put(ctx, k, "x"); err != nil {
			t.Fatal(err)
		}
	}
	want := append(slices.Clone(keys), "/s/other", "/s/zzz")
	slices.Sort(want)
	decode := func(_ string, v []byte) (string, error) { return string(v), nil }
	seen := map[string]int{}
	c := kvcache.New(cli, kvcache.NewRevisions(cli), "/s/", decode, etcdtest.Quiet, func(prev, cur *kvcache.Item[string], _ int64) {
		if prev == nil {
			seen[cur.Key]++
		}
	}).Split(append(ids.Splits("/s/", ids.HaVip), "/r/", "/t/")...)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		var got []string
		c.View(func(items map[string]*kvcache.Item[string]) {
			for k := range items {
				got = append(got, k)
			}
		})
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %d keys, want %d", when, len(got), len(want))
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("%s: %s created %d times", when, k, n)
			}
		}
	}
	check("start")
	if _, err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	check("reload")
}

// BenchmarkSplitLoad loads a cache of 100,000 keys of 250 bytes unsplit and split at the IDs'
// first characters, in turn in the same run, and reports the time of each (median of 3) and their
// ratio.
//
//	cd platform && go test ./kvcache -run '^$' -bench SplitLoad -benchtime 1x
func BenchmarkSplitLoad(b *testing.B) {
	_, cli := etcdtest.Fresh(b)
	const n = 100000
	putIDs(b, cli, "/b/", n, 250)
	decode := func(_ string, v []byte) ([]byte, error) { return v, nil }
	load := func(split bool) time.Duration {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := kvcache.New(cli, kvcache.NewRevisions(cli), "/b/", decode, etcdtest.Quiet)
		if split {
			c.Split(ids.Splits("/b/", ids.HaVip)...)
		}
		t0 := time.Now()
		if err := c.Start(ctx); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for range b.N {
		var plain, split []time.Duration
		for range 3 {
			plain, split = append(plain, load(false)), append(split, load(true))
		}
		slices.Sort(plain)
		slices.Sort(split)
		b.ReportMetric(float64(plain[1].Milliseconds()), "unsplit-ms")
		b.ReportMetric(float64(split[1].Milliseconds()), "split-ms")
		b.ReportMetric(float64(split[1])/float64(plain[1]), "split/unsplit")
	}
}
