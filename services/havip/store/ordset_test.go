package store

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/records"
)

// narrow makes nodes hold at most width elements or children for the test, so that a few hundred
// elements make trees several levels deep.
func narrow(t *testing.T, width int) {
	l, i := leafMax, innerMax
	leafMax, innerMax = width, width
	t.Cleanup(func() { leafMax, innerMax = l, i })
}

// ordsetModel is the naive set: a slice kept sorted.
type ordsetModel[K any, F keyFn[K]] struct {
	s     ordset[K, F]
	model []*entry
}

func (m *ordsetModel[K, F]) find(b bound[K]) (int, bool) {
	return slices.BinarySearchFunc(m.model, b, cmpAt[K, F])
}

func (m *ordsetModel[K, F]) put(t *rapid.T, e *entry) {
	i, found := m.find(m.s.boundOf(e))
	if found {
		m.model[i] = e
	} else {
		m.model = slices.Insert(m.model, i, e)
	}
	if added := m.s.Put(e); added == found {
		t.Fatalf("Put(%v) added=%v, but it was present=%v", m.s.boundOf(e), added, found)
	}
}

func (m *ordsetModel[K, F]) del(t *rapid.T, b bound[K]) {
	i, found := m.find(b)
	if found {
		m.model = slices.Delete(m.model, i, i+1)
	}
	if got := m.s.Delete(b); got != found {
		t.Fatalf("Delete(%v) = %v, want %v", b, got, found)
	}
}

// check compares the set with the model and checks the tree's invariants.
func (m *ordsetModel[K, F]) check(t *rapid.T) {
	if m.s.Len() != len(m.model) {
		t.Fatalf("Len %d, want %d", m.s.Len(), len(m.model))
	}
	if got := take(m.s.Walk(0), len(m.model)+1); !slices.Equal(got, m.model) {
		t.Fatalf("walk gives %d elements %v, want %d", len(got), bounds(got), len(m.model))
	}
	if m.s.root != nil {
		if m.s.root.leaf() && len(m.s.root.items) < 2 {
			t.Fatalf("a root leaf of %d elements (one is kept without a tree)", len(m.s.root.items))
		}
		checkNode[K, F](t, m.s.root, nil, nil, true)
	}
}

func bounds(es []*entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s/%d/%s", e.Value.Name(), e.CreateRevision, e.Key))
	}
	return out
}

// checkNode checks that n's elements are in order and within [lo, hi), that sizes count them,
// and that no node is wider than allowed; it returns how many elements are under n.
func checkNode[K any, F keyFn[K]](t *rapid.T, n *node[K], lo, hi *bound[K], root bool) int {
	in := func(e *entry) bool {
		return (lo == nil || cmpAt[K, F](e, *lo) >= 0) && (hi == nil || cmpAt[K, F](e, *hi) < 0)
	}
	if n.leaf() {
		if len(n.items) > leafMax {
			t.Fatalf("leaf of %d > %d", len(n.items), leafMax)
		}
		for i, e := range n.items {
			if !in(e) || i > 0 && cmpAt[K, F](n.items[i-1], boundIn[K, F](e)) >= 0 {
				t.Fatalf("leaf out of order at %d: %v (range %v..%v)", i, bounds(n.items), lo, hi)
			}
		}
		return len(n.items)
	}
	if len(n.kids) > innerMax || len(n.kids) == 0 || len(n.sizes) != len(n.kids) || len(n.seps) != len(n.kids) {
		t.Fatalf("inner node of %d children, %d sizes, %d bounds", len(n.kids), len(n.sizes), len(n.seps))
	}
	if root && len(n.kids) < 2 {
		t.Fatalf("inner root with %d child", len(n.kids))
	}
	total := 0
	for i, k := range n.kids {
		klo, khi := lo, hi
		if i > 0 {
			klo = &n.seps[i]
			if lo != nil && cmpBound[K, F](*klo, *lo) < 0 || hi != nil && cmpBound[K, F](*klo, *hi) > 0 {
				t.Fatalf("bound %v outside %v..%v", *klo, lo, hi)
			}
		}
		if i+1 < len(n.kids) {
			khi = &n.seps[i+1]
		}
		c := checkNode[K, F](t, k, klo, khi, false)
		if int(n.sizes[i]) != c {
			t.Fatalf("size %d of a child holding %d", n.sizes[i], c)
		}
		total += c
	}
	return total
}

// TestOrdsetModel: any sequence of puts, deletes, runs of appends and builds at once leaves a set
// — in creation order, or by name then creation — holding what a sorted slice holds, and Rank, At
// and From answer as on the slice; the tree stays well formed.
func TestOrdsetModel(t *testing.T) {
	for _, width := range []int{4, 5, 8, 64} {
		t.Run(fmt.Sprint("width ", width), func(t *testing.T) {
			narrow(t, width)
			t.Run("creation", func(t *testing.T) { rapid.Check(t, testOrdset[struct{}, creation](width)) })
			t.Run("by name", func(t *testing.T) { rapid.Check(t, testOrdset[string, byName](width)) })
		})
	}
}

func testOrdset[K any, F keyFn[K]](width int) func(*rapid.T) {
	return func(t *rapid.T) {
		m := &ordsetModel[K, F]{}
		names := rapid.SampledFrom([]string{"", "x", "y"})
		keys := rapid.SampledFrom([]string{"a", "b", "c", "d"})
		revs := rapid.Int64Range(0, 300)
		nextRev := int64(301)
		at := func(t *rapid.T, revs *rapid.Generator[int64]) bound[K] {
			return m.s.boundOf(&entry{Value: named(names.Draw(t, "name")), CreateRevision: revs.Draw(t, "rev"), Key: keys.Draw(t, "key")})
		}
		t.Repeat(map[string]func(*rapid.T){
			"put": func(t *rapid.T) {
				m.put(t, &entry{Value: named(names.Draw(t, "name")), CreateRevision: revs.Draw(t, "rev"), Key: keys.Draw(t, "key")})
			},
			"append": func(t *rapid.T) { // in creation order, as the watch gives them
				name := names.Draw(t, "name")
				for range rapid.IntRange(1, 3*width).Draw(t, "n") {
					m.put(t, &entry{Value: named(name), CreateRevision: nextRev, Key: "a"})
					nextRev++
				}
			},
			"build":  func(*rapid.T) { m.s = fromSorted[K, F](slices.Clone(m.model)) }, // at once, as a first load does
			"delete": func(t *rapid.T) { m.del(t, at(t, revs)) },
			"deleteSome": func(t *rapid.T) { // in bulk, from anywhere
				if len(m.model) == 0 {
					t.Skip("empty")
				}
				from := rapid.IntRange(0, len(m.model)-1).Draw(t, "from")
				for _, e := range slices.Clone(m.model[from:min(len(m.model), from+rapid.IntRange(1, 3*width).Draw(t, "n"))]) {
					m.del(t, m.s.boundOf(e))
				}
			},
			"rank": func(t *rapid.T) {
				b := at(t, rapid.Int64Range(-1, nextRev))
				i, found := m.find(b)
				if got := m.s.Rank(b, false); got != i {
					t.Fatalf("Rank(%v) = %d, want %d", b, got, i)
				}
				if found {
					i++
				}
				if got := m.s.Rank(b, true); got != i {
					t.Fatalf("Rank(%v, inclusive) = %d, want %d", b, got, i)
				}
				if m.s.Has(b) != found {
					t.Fatalf("Has(%v) = %v", b, !found)
				}
			},
			"at": func(t *rapid.T) {
				if len(m.model) == 0 {
					t.Skip("empty")
				}
				i := rapid.IntRange(0, len(m.model)-1).Draw(t, "i")
				if got := m.s.At(i); got != m.model[i] {
					t.Fatalf("At(%d) = %v, want %v", i, bounds([]*entry{got}), bounds(m.model[i:i+1]))
				}
			},
			"from": func(t *rapid.T) {
				i := rapid.IntRange(0, len(m.model)).Draw(t, "i")
				n := rapid.IntRange(0, 2*width).Draw(t, "n")
				if got, want := take(m.s.Walk(i), n), m.model[i:min(len(m.model), i+n)]; !slices.Equal(got, want) {
					t.Fatalf("From(%d) gives %v, want %v", i, bounds(got), bounds(want))
				}
			},
			"": m.check,
		})
	}
}

// TestOrdsetAppendsFillLeaves: HAVIPs that come in creation order fill their leaves.
func TestOrdsetAppendsFillLeaves(t *testing.T) {
	var s cset
	const n = 100000
	for i := range n {
		s.Put(&entry{CreateRevision: int64(i), Key: "k"})
	}
	leaves, slots := 0, 0
	var walk func(*node[struct{}])
	walk = func(n *node[struct{}]) {
		if n.leaf() {
			leaves++
			slots += cap(n.items)
			return
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(s.root)
	if fill := float64(n) / float64(slots); fill < 0.95 {
		t.Errorf("%d elements in %d leaves of %d slots: %.0f%% full", n, leaves, slots, 100*fill)
	}
}

func BenchmarkOrdset(b *testing.B) {
	const n = 1000000
	es := make([]*entry, n)
	for i := range es {
		es[i] = &entry{CreateRevision: int64(i), Key: "/havip/havip/havip-00000000"}
	}
	perm := rapid.Permutation(es)
	var shuffled []*entry
	rapid.Check(b, func(t *rapid.T) { shuffled = perm.Draw(t, "order") })
	b.Run("put random order", func(b *testing.B) {
		for range b.N {
			var s cset
			for _, e := range shuffled {
				s.Put(e)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/put")
	})
	var s cset
	for _, e := range es {
		s.Put(e)
	}
	b.Run("rank+at", func(b *testing.B) {
		for i := range b.N {
			e := es[(i*7919)%n]
			if s.At(s.Rank(boundOf(e), false)) != e {
				b.Fatal("wrong")
			}
		}
	})
}

// named is a record with only a name.
func named(name string) havipcache.Record { return havipcache.Compact("", records.HaVip{Name: name}) }
