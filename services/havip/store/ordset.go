package store

import (
	"cmp"
	"slices"
	"strings"
)

// An ordset is a set of cached HAVIPs ordered by a key of theirs (F: a field, or nothing), then by
// creation — by (CreateRevision, Key): HAVIPs created in one transaction share a revision — that
// counts: it finds the element at a position, and the position of an element, in O(log n). It is a
// B+tree whose inner nodes keep the size of each subtree; a set of one element is kept without a
// tree. The zero value is an empty set; it is a value, so a map holds it without a pointer of its
// own. Not safe for concurrent writes (the cache's lock guards it).
type ordset[K any, F keyFn[K]] struct {
	one  *entry // the only element, when root is nil
	root *node[K]
}

// keyFn is an ordset's leading key: of gives an element's, cmp orders two.
type keyFn[K any] interface {
	of(e *entry) K
	cmp(a, b K) int
}

// creation orders by creation alone.
type creation struct{}

func (creation) of(*entry) struct{}         { return struct{}{} }
func (creation) cmp(struct{}, struct{}) int { return 0 }

// cset is a set in creation order.
type cset = ordset[struct{}, creation]

// cbound is a position in creation order.
type cbound = bound[struct{}]

// The widest nodes (variables for the tests, which make them narrow to grow deep trees).
var (
	leafMax  = 64 // elements in a leaf
	innerMax = 64 // children of an inner node
)

// A bound is a position in an ordset's order: a key, then a place in creation order.
type bound[K any] struct {
	v   K
	rev int64
	key string
}

// boundOf is e's position in creation order.
func boundOf(e *entry) cbound { return cbound{rev: e.CreateRevision, key: e.Key} }

// boundOf is e's position in s's order.
func (s *ordset[K, F]) boundOf(e *entry) bound[K] { return boundIn[K, F](e) }

func boundIn[K any, F keyFn[K]](e *entry) bound[K] {
	var f F
	return bound[K]{f.of(e), e.CreateRevision, e.Key}
}

// cmpAt compares e's position with b's.
func cmpAt[K any, F keyFn[K]](e *entry, b bound[K]) int {
	var f F
	if c := f.cmp(f.of(e), b.v); c != 0 {
		return c
	}
	if c := cmp.Compare(e.CreateRevision, b.rev); c != 0 {
		return c
	}
	return strings.Compare(e.Key, b.key)
}

// before reports whether a is before b in creation order.
func before(a, b *entry) bool { return cmpAt[struct{}, creation](a, boundOf(b)) < 0 }

// node is a leaf (items) or an inner node (kids, sizes, seps).
type node[K any] struct {
	items []*entry   // a leaf's elements, in order
	kids  []*node[K] // an inner node's children
	sizes []int32    // the number of elements under each child
	// seps[i] (i ≥ 1) is at or before every element of kids[i] and after every element of
	// kids[i-1]; seps[0] is not used.
	seps []bound[K]
}

func (n *node[K]) leaf() bool { return n.kids == nil }

func (n *node[K]) count() int {
	if n.leaf() {
		return len(n.items)
	}
	t := 0
	for _, s := range n.sizes {
		t += int(s)
	}
	return t
}

// child is the index of the child whose range holds b.
func child[K any, F keyFn[K]](n *node[K], b bound[K]) int {
	lo, hi := 1, len(n.seps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cmpBound[K, F](n.seps[m], b) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

func cmpBound[K any, F keyFn[K]](a, b bound[K]) int {
	var f F
	if c := f.cmp(a.v, b.v); c != 0 {
		return c
	}
	if c := cmp.Compare(a.rev, b.rev); c != 0 {
		return c
	}
	return strings.Compare(a.key, b.key)
}

// search is the index of the first element of items at or after b (inclusive) or after b (not).
func search[K any, F keyFn[K]](items []*entry, b bound[K], inclusive bool) int {
	lo, hi := 0, len(items)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		c := cmpAt[K, F](items[m], b)
		if c < 0 || !inclusive && c == 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Len is the number of elements.
func (s *ordset[K, F]) Len() int {
	if s.root == nil {
		if s.one != nil {
			return 1
		}
		return 0
	}
	return s.root.count()
}

// fromSorted is the set of items, which are in its order, each at a position of its own: built
// bottom-up in O(n), every node full but the last of each level, as appends in order leave them
// (each node's slices no longer than it holds: a set of a few elements stays small).
func fromSorted[K any, F keyFn[K]](items []*entry) ordset[K, F] {
	switch len(items) {
	case 0:
		return ordset[K, F]{}
	case 1:
		return ordset[K, F]{one: items[0]}
	}
	var level []*node[K]
	for i := 0; i < len(items); i += leafMax {
		level = append(level, &node[K]{items: slices.Clone(items[i:min(i+leafMax, len(items))])})
	}
	for len(level) > 1 {
		var up []*node[K]
		for i := 0; i < len(level); i += innerMax {
			kids := level[i:min(i+innerMax, len(level))]
			n := &node[K]{kids: slices.Clone(kids), sizes: make([]int32, len(kids)), seps: make([]bound[K], len(kids))}
			for j, k := range kids {
				n.sizes[j] = int32(k.count())
				if j > 0 {
					n.seps[j] = boundIn[K, F](k.first())
				}
			}
			up = append(up, n)
		}
		level = up
	}
	return ordset[K, F]{root: level[0]}
}

// first is the first element under n.
func (n *node[K]) first() *entry {
	for !n.leaf() {
		n = n.kids[0]
	}
	return n.items[0]
}

// Put adds e, or replaces the element at e's position with e; it reports whether e was added.
func (s *ordset[K, F]) Put(e *entry) bool {
	b := s.boundOf(e)
	if s.root == nil {
		switch {
		case s.one == nil:
			s.one = e
			return true
		case cmpAt[K, F](s.one, b) == 0:
			s.one = e
			return false
		case cmpAt[K, F](s.one, b) < 0:
			s.root = &node[K]{items: []*entry{s.one, e}}
		default:
			s.root = &node[K]{items: []*entry{e, s.one}}
		}
		s.one = nil
		return true
	}
	added, right, sep := put[K, F](s.root, e, b)
	if right != nil {
		s.root = &node[K]{kids: []*node[K]{s.root, right}, sizes: []int32{int32(s.root.count()), int32(right.count())}, seps: []bound[K]{{}, sep}}
	}
	return added
}

// put adds e (at b) under n, or replaces the element at b; when n had to split, it returns the
// new right sibling and the bound between them.
func put[K any, F keyFn[K]](n *node[K], e *entry, b bound[K]) (added bool, right *node[K], sep bound[K]) {
	if n.leaf() {
		i := search[K, F](n.items, b, true)
		if i < len(n.items) && cmpAt[K, F](n.items[i], b) == 0 {
			n.items[i] = e
			return false, nil, sep
		}
		if len(n.items) < leafMax {
			n.items = slices.Insert(n.items, i, e)
			return true, nil, sep
		}
		// Full: split first. An append (the usual case: HAVIPs come in creation order) starts
		// a new leaf and leaves this one full, so that leaves filled in order stay full.
		if i == len(n.items) {
			right = &node[K]{items: []*entry{e}}
			return true, right, b
		}
		mid := leafMax / 2
		right = &node[K]{items: append(make([]*entry, 0, leafMax), n.items[mid:]...)}
		clear(n.items[mid:])
		n.items = n.items[:mid]
		if i <= mid {
			n.items = slices.Insert(n.items, i, e)
		} else {
			right.items = slices.Insert(right.items, i-mid, e)
		}
		return true, right, boundIn[K, F](right.items[0])
	}
	c := child[K, F](n, b)
	added, kid, ksep := put[K, F](n.kids[c], e, b)
	if added {
		n.sizes[c]++
	}
	if kid == nil {
		return added, nil, sep
	}
	ks := int32(kid.count())
	n.sizes[c] -= ks
	at := c + 1
	if len(n.kids) < innerMax {
		n.insertKid(at, kid, ks, ksep)
		return added, nil, sep
	}
	if at == len(n.kids) {
		right = &node[K]{kids: []*node[K]{kid}, sizes: []int32{ks}, seps: []bound[K]{{}}}
		return added, right, ksep
	}
	mid := innerMax / 2
	right = &node[K]{
		kids:  append(make([]*node[K], 0, innerMax), n.kids[mid:]...),
		sizes: append(make([]int32, 0, innerMax), n.sizes[mid:]...),
		seps:  append(make([]bound[K], 0, innerMax), n.seps[mid:]...),
	}
	sep = right.seps[0]
	right.seps[0] = bound[K]{}
	n.truncate(mid)
	if at <= mid {
		n.insertKid(at, kid, ks, ksep)
	} else {
		right.insertKid(at-mid, kid, ks, ksep)
	}
	return added, right, sep
}

func (n *node[K]) insertKid(i int, kid *node[K], size int32, sep bound[K]) {
	n.kids = slices.Insert(n.kids, i, kid)
	n.sizes = slices.Insert(n.sizes, i, size)
	n.seps = slices.Insert(n.seps, i, sep)
}

func (n *node[K]) removeKid(i int) {
	n.kids = slices.Delete(n.kids, i, i+1)
	n.sizes = slices.Delete(n.sizes, i, i+1)
	n.seps = slices.Delete(n.seps, i, i+1)
}

// truncate keeps an inner node's first k children, clearing the rest for the collector.
func (n *node[K]) truncate(k int) {
	clear(n.kids[k:])
	clear(n.seps[k:])
	n.kids, n.sizes, n.seps = n.kids[:k], n.sizes[:k], n.seps[:k]
}

// Delete removes the element at b; it reports whether there was one.
func (s *ordset[K, F]) Delete(b bound[K]) bool {
	if s.root == nil {
		if s.one != nil && cmpAt[K, F](s.one, b) == 0 {
			s.one = nil
			return true
		}
		return false
	}
	if !del[K, F](s.root, b) {
		return false
	}
	for !s.root.leaf() && len(s.root.kids) == 1 {
		s.root = s.root.kids[0]
	}
	if s.root.leaf() && len(s.root.items) <= 1 {
		s.one = nil
		if len(s.root.items) == 1 {
			s.one = s.root.items[0]
		}
		s.root = nil
	}
	return true
}

func del[K any, F keyFn[K]](n *node[K], b bound[K]) bool {
	if n.leaf() {
		i := search[K, F](n.items, b, true)
		if i == len(n.items) || cmpAt[K, F](n.items[i], b) != 0 {
			return false
		}
		n.items = slices.Delete(n.items, i, i+1)
		return true
	}
	c := child[K, F](n, b)
	if !del[K, F](n.kids[c], b) {
		return false
	}
	n.sizes[c]--
	if k := n.kids[c]; len(n.kids) > 1 && (k.leaf() && len(k.items) < leafMax/4 || !k.leaf() && len(k.kids) < innerMax/4) {
		if c+1 < len(n.kids) {
			rebalance[K, F](n, c, c+1)
		} else {
			rebalance[K, F](n, c-1, c)
		}
	}
	return true
}

// rebalance merges the neighbouring children l and r = l+1 when they fit in one node, or else
// shares their contents evenly between them.
func rebalance[K any, F keyFn[K]](n *node[K], l, r int) {
	L, R := n.kids[l], n.kids[r]
	if L.leaf() {
		total := len(L.items) + len(R.items)
		if total <= leafMax {
			L.items = append(L.items, R.items...)
			n.sizes[l] = int32(total)
			n.removeKid(r)
			return
		}
		all := append(slices.Clone(L.items), R.items...)
		h := total / 2
		L.items = append(make([]*entry, 0, leafMax), all[:h]...)
		R.items = append(make([]*entry, 0, leafMax), all[h:]...)
		n.sizes[l], n.sizes[r] = int32(h), int32(total-h)
		n.seps[r] = boundIn[K, F](R.items[0])
		return
	}
	kids := append(slices.Clone(L.kids), R.kids...)
	sizes := append(slices.Clone(L.sizes), R.sizes...)
	seps := append(append(slices.Clone(L.seps), n.seps[r]), R.seps[1:]...)
	if len(kids) <= innerMax {
		L.kids, L.sizes, L.seps = kids, sizes, seps
		n.sizes[l] += n.sizes[r]
		n.removeKid(r)
		return
	}
	h := len(kids) / 2
	L.kids, L.sizes, L.seps = append(make([]*node[K], 0, innerMax), kids[:h]...), append(make([]int32, 0, innerMax), sizes[:h]...), append(make([]bound[K], 0, innerMax), seps[:h]...)
	R.kids, R.sizes, R.seps = append(make([]*node[K], 0, innerMax), kids[h:]...), append(make([]int32, 0, innerMax), sizes[h:]...), append(make([]bound[K], 0, innerMax), seps[h:]...)
	n.seps[r] = R.seps[0]
	R.seps[0] = bound[K]{}
	n.sizes[l], n.sizes[r] = int32(L.count()), int32(R.count())
}

// Rank is the number of elements before b (inclusive: at or before b).
func (s *ordset[K, F]) Rank(b bound[K], inclusive bool) int {
	if s.root == nil {
		if s.one != nil && (cmpAt[K, F](s.one, b) < 0 || inclusive && cmpAt[K, F](s.one, b) == 0) {
			return 1
		}
		return 0
	}
	r := 0
	n := s.root
	for !n.leaf() {
		c := child[K, F](n, b)
		for _, sz := range n.sizes[:c] {
			r += int(sz)
		}
		n = n.kids[c]
	}
	return r + search[K, F](n.items, b, !inclusive)
}

// Has reports whether an element is at b.
func (s *ordset[K, F]) Has(b bound[K]) bool { return s.Rank(b, true) > s.Rank(b, false) }

// At is the element at position i (0 ≤ i < Len).
func (s *ordset[K, F]) At(i int) *entry {
	if s.root == nil {
		return s.one
	}
	n := s.root
	for !n.leaf() {
		c := 0
		for ; c < len(n.sizes)-1 && i >= int(n.sizes[c]); c++ {
			i -= int(n.sizes[c])
		}
		n = n.kids[c]
	}
	return n.items[i]
}

// From returns a cursor at position i: its Next gives the elements from the i-th on.
func (s *ordset[K, F]) From(i int) cursor[K] {
	if s.root == nil {
		if i == 0 {
			return cursor[K]{one: s.one}
		}
		return cursor[K]{}
	}
	var c cursor[K]
	n := s.root
	for !n.leaf() {
		k := 0
		for ; k < len(n.sizes)-1 && i >= int(n.sizes[k]); k++ {
			i -= int(n.sizes[k])
		}
		c.path = append(c.path, frame[K]{n, k})
		n = n.kids[k]
	}
	c.path = append(c.path, frame[K]{n, i})
	return c
}

// A cursor walks a set in order. It is valid while the set does not change.
type cursor[K any] struct {
	one  *entry
	path []frame[K] // from the root to the current leaf
}

type frame[K any] struct {
	n *node[K]
	i int // the next element (leaf) or the current child (inner)
}

// Next returns the next element, or nil at the end.
func (c *cursor[K]) Next() *entry {
	if c.one != nil {
		e := c.one
		c.one = nil
		return e
	}
	for len(c.path) > 0 {
		top := &c.path[len(c.path)-1]
		if top.n.leaf() {
			if top.i < len(top.n.items) {
				top.i++
				return top.n.items[top.i-1]
			}
			c.path = c.path[:len(c.path)-1]
			continue
		}
		top.i++
		if top.i >= len(top.n.kids) {
			c.path = c.path[:len(c.path)-1]
			continue
		}
		for n := top.n.kids[top.i]; ; n = n.kids[0] {
			c.path = append(c.path, frame[K]{n, 0})
			if n.leaf() {
				break
			}
		}
	}
	return nil
}
