package kvcache

import (
	"sync"

	"github.com/google/btree"
)

// Index groups a cache's items by a value of theirs (an account, say), each group in creation
// order (CreateRevision, then key), so that one group is listed in O(log n + its size) with no
// scan of the others and no sort. Its Hook keeps it; give it to New.
type Index[T any] struct {
	of func(T) string

	mu     sync.RWMutex
	groups map[string]*btree.BTreeG[*Item[T]]
	free   *btree.FreeListG[*Item[T]] // one for every group's tree, not one each
}

// NewIndex returns an empty index grouping items by of(value).
func NewIndex[T any](of func(T) string) *Index[T] {
	return &Index[T]{of: of, groups: map[string]*btree.BTreeG[*Item[T]]{}, free: btree.NewFreeListG[*Item[T]](btree.DefaultFreeListSize)}
}

func created[T any](a, b *Item[T]) bool {
	if a.CreateRevision != b.CreateRevision {
		return a.CreateRevision < b.CreateRevision
	}
	return a.Key < b.Key
}

// Hook is the cache hook that keeps the index.
func (ix *Index[T]) Hook(prev, cur *Item[T], _ int64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if prev != nil {
		g := ix.of(prev.Value)
		if t := ix.groups[g]; t != nil {
			t.Delete(prev)
			if t.Len() == 0 {
				delete(ix.groups, g)
			}
		}
	}
	if cur != nil {
		g := ix.of(cur.Value)
		t := ix.groups[g]
		if t == nil {
			t = btree.NewWithFreeListG(32, created[T], ix.free)
			ix.groups[g] = t
		}
		t.ReplaceOrInsert(cur)
	}
}

// List returns the values of group g's items that keep returns true for, oldest first.
func (ix *Index[T]) List(g string, keep func(T) bool) []T {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []T
	if t := ix.groups[g]; t != nil {
		t.Ascend(func(it *Item[T]) bool {
			if keep == nil || keep(it.Value) {
				out = append(out, it.Value)
			}
			return true
		})
	}
	return out
}
