package kvcache_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/openhavip/havip/platform/kvcache"
)

// TestIndex: after any series of creates, updates (a change of group included) and deletes, as a
// cache's hook tells them, each group lists exactly its items, in creation order, filtered.
func TestIndex(t *testing.T) {
	type val struct {
		group string
		n     int
	}
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		ix := kvcache.NewIndex(func(v val) string { return v.group })
		items := map[string]*kvcache.Item[val]{}
		rev := int64(0)
		for range 500 {
			rev++
			key := fmt.Sprint("k", r.IntN(60))
			prev := items[key]
			if prev != nil && r.IntN(3) == 0 {
				delete(items, key)
				ix.Hook(prev, nil, rev)
				continue
			}
			cur := &kvcache.Item[val]{Key: key, Value: val{fmt.Sprint("g", r.IntN(4)), r.IntN(10)}, CreateRevision: rev, ModRevision: rev}
			if prev != nil {
				cur.CreateRevision = prev.CreateRevision
			}
			if r.IntN(4) == 0 { // several keys created in one transaction share its revision
				cur.CreateRevision = max(1, cur.CreateRevision-1)
			}
			items[key] = cur
			ix.Hook(prev, cur, rev)
		}
		for _, g := range []string{"g0", "g1", "g2", "g3", "none"} {
			var want []*kvcache.Item[val]
			for _, it := range items {
				if it.Value.group == g && it.Value.n%2 == 0 {
					want = append(want, it)
				}
			}
			slices.SortFunc(want, func(a, b *kvcache.Item[val]) int {
				return cmp.Or(cmp.Compare(a.CreateRevision, b.CreateRevision), cmp.Compare(a.Key, b.Key))
			})
			var wantVals []val
			for _, it := range want {
				wantVals = append(wantVals, it.Value)
			}
			got := ix.List(g, func(v val) bool { return v.n%2 == 0 })
			if !slices.Equal(got, wantVals) {
				t.Fatalf("seed %d, group %s: %v, want %v", seed, g, got, wantVals)
			}
		}
	}
}
