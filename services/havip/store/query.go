package store

import (
	"net/netip"
	"slices"

	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
)

// Filter is one DescribeHaVips filter: a HAVIP passes when its field Key has any of Values.
type Filter struct {
	Key    string
	Values []string
}

// FilterKeys are the filter keys Select knows: a HAVIP's ID, name, VPC, subnet, VIP ("10.0.0.5"),
// range check ("true" or "false"), the public IP of its EIP (address-ip: "" passes HAVIPs with
// none), and the ID and type of any entry of its switch range.
var FilterKeys = []string{
	"havip-id", "havip-name", "vpc-id", "subnet-id", "vip", "check-associate", "address-ip",
	"havip-association.instance-id", "havip-association.instance-type",
}

// source is what one filter selects from an account: the union of index sets, or a short list
// looked up by key, or — with no index to use — every HAVIP, each tested.
type source struct {
	sets     []run
	disjoint bool     // no two of sets share a HAVIP
	list     []*entry // in creation order, when listed
	listed   bool
	scan     bool
	size     int // at least the number of HAVIPs selected; exactly, when listed or disjoint
	test     func(*entry) bool
}

func (src *source) exact() bool {
	return src.listed || !src.scan && (src.disjoint || len(src.sets) == 1)
}

// passesAll reports whether every one of the account's n HAVIPs passes (then the filter can go).
func (src *source) passesAll(n int) bool {
	switch {
	case src.scan:
		return false
	case src.exact():
		return src.size == n
	}
	for i := range src.sets {
		if src.sets[i].Len() == n {
			return true
		}
	}
	return false
}

func setsSource(m map[string]cset, keys []string, test func(*entry) bool) source {
	src := source{disjoint: true, test: test}
	for _, k := range keys {
		if s, ok := m[k]; ok {
			src.sets = append(src.sets, &s)
			src.size += s.Len()
		}
	}
	return src
}

func runsSource[K any, F keyFn[K]](s *ordset[K, F], keys []K, test func(*entry) bool) source {
	src := source{disjoint: true, test: test}
	for _, k := range keys {
		if r := runOf(s, k); r.n > 0 {
			src.sets = append(src.sets, r)
			src.size += r.n
		}
	}
	return src
}

func listSource(list []*entry, test func(*entry) bool) source {
	slices.SortFunc(list, func(a, b *entry) int { return cmpAt[struct{}, creation](a, boundOf(b)) })
	list = slices.CompactFunc(list, func(a, b *entry) bool { return a == b })
	return source{list: list, listed: true, size: len(list), test: test}
}

func setOf[K comparable](keys []K) map[K]bool {
	m := make(map[K]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// sourceOf is what filter f selects from account a (whose HAVIPs items holds by key). For an
// address-ip filter, bound is the HAVIPs whose EIP has an address among f's values, and addressOf
// the address of a HAVIP's EIP ("" for none).
func sourceOf(a *accountIndex, account string, items map[string]*entry, f Filter, bound map[string]bool, addressOf func(id string) string) source {
	vals := slices.Compact(slices.Sorted(slices.Values(f.Values)))
	want := setOf(vals)
	switch f.Key {
	case "havip-id": // by key (a record whose id were not its key's tail would not be found)
		var list []*entry
		for _, v := range vals {
			if e := items[records.HaVipKey(v)]; e != nil && e.Value.Account() == account && e.Value.ID(e.Key) == v {
				list = append(list, e)
			}
		}
		return listSource(list, func(e *entry) bool { return want[e.Value.ID(e.Key)] })
	case "havip-name":
		return runsSource(&a.names, vals, func(e *entry) bool { return want[e.Value.Name()] })
	case "vpc-id":
		return setsSource(a.vpcs, vals, func(e *entry) bool { return want[e.Value.VpcID()] })
	case "subnet-id":
		return setsSource(a.subnets, vals, func(e *entry) bool { return want[e.Value.SubnetID()] })
	case "vip":
		var addrs []netip.Addr // distinct strings that parse are distinct addresses
		for _, v := range vals {
			if ip, ok := parseCanonical(v); ok {
				addrs = append(addrs, ip)
			}
		}
		wantIP := setOf(addrs)
		return runsSource(&a.vips, addrs, func(e *entry) bool { return wantIP[e.Value.VIP()] })
	case "check-associate":
		src := source{disjoint: true, test: func(e *entry) bool { return want[boolString(e.Value.CheckAssociate())] }}
		for i, v := range []string{"false", "true"} {
			if want[v] && a.checks[i].Len() > 0 {
				src.sets = append(src.sets, &a.checks[i])
				src.size += a.checks[i].Len()
			}
		}
		return src
	case "havip-association.instance-id", "havip-association.instance-type":
		m, field := a.instances, havipcache.Assoc.InstanceID
		if f.Key == "havip-association.instance-type" {
			m, field = a.types, havipcache.Assoc.Type
		}
		src := setsSource(m, vals, func(e *entry) bool {
			return slices.ContainsFunc(e.Value.Associations(), func(x havipcache.Assoc) bool { return want[field(x)] })
		})
		src.disjoint = len(src.sets) <= 1 // a HAVIP may be in the sets of two of its instances
		return src
	case "address-ip":
		if want[""] { // HAVIPs with no EIP pass too: there is no index of them
			return source{scan: true, size: a.all.Len(), test: func(e *entry) bool { return want[addressOf(havipcache.IDOf(e.Key))] }}
		}
		var list []*entry
		for id := range bound {
			if e := items[records.HaVipKey(id)]; e != nil && e.Value.Account() == account {
				list = append(list, e)
			}
		}
		return listSource(list, func(e *entry) bool { return bound[havipcache.IDOf(e.Key)] })
	}
	return source{listed: true} // an unknown key passes nothing
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// Select returns the page [offset, offset+limit) of an account's HAVIPs that pass every filter,
// in creation order, as cached, and how many pass in all. Its cost, under the cache's read lock,
// for an account of n HAVIPs:
//   - with no filter, or only filters every HAVIP of the account passes: O(log n + limit);
//   - with one filter of k values, on a field a HAVIP has one value of (ID, name, VPC, subnet,
//     VIP, range check, EIP) or on a switch-range field with one value: O(k·log² n + k·limit),
//     O(log n + limit) for one value; the total comes from the index's counts, with no scan;
//   - otherwise the filter that selects fewest HAVIPs (m, by the index's counts) drives, and each
//     HAVIP it selects is tested against the other filters: O(log n + m·(k + filters)). An
//     address-ip filter with "" (no EIP) has no index: it tests each of the n.
func (s *Store) Select(account string, filters []Filter, offset, limit int) ([]View, int) {
	bound := make([]map[string]bool, len(filters))
	s.addresses.View(func(map[string]*kvcache.Item[records.AddressBinding]) {
		for i, f := range filters {
			if f.Key == "address-ip" {
				bound[i] = map[string]bool{}
				for _, v := range f.Values {
					for _, id := range s.addrIdx.lookup(v) {
						bound[i][id] = true
					}
				}
			}
		}
	})
	type keyed struct {
		key string
		rec havipcache.Record
	}
	var page []keyed
	total := 0
	s.havips.View(func(items map[string]*entry) {
		a := s.idx.accounts[account]
		if a == nil {
			return
		}
		addressOf := func(id string) string {
			b, _ := s.AddressOf(id)
			return b.AddressIP
		}
		srcs := make([]source, len(filters))
		for i, f := range filters {
			srcs[i] = sourceOf(a, account, items, f, bound[i], addressOf)
		}
		var entries []*entry
		entries, total = a.selectPage(srcs, offset, limit)
		page = make([]keyed, len(entries))
		for i, e := range entries {
			page[i] = keyed{e.Key, e.Value}
		}
	})
	out := make([]View, len(page))
	for i, p := range page {
		out[i] = s.view(p.rec.HaVip(p.key))
	}
	return out, total
}

// selectPage returns the page [offset, offset+limit) of the account's HAVIPs every source
// selects, and how many they all select.
func (a *accountIndex) selectPage(srcs []source, offset, limit int) ([]*entry, int) {
	n := a.all.Len()
	kept := srcs[:0]
	for _, src := range srcs {
		if src.passesAll(n) {
			continue
		}
		if !src.scan && src.size == 0 {
			return nil, 0
		}
		kept = append(kept, src)
	}
	if len(kept) == 0 {
		return take(a.all.Walk(min(offset, n)), limit), n
	}
	if len(kept) == 1 && kept[0].exact() {
		src := &kept[0]
		if src.listed {
			return src.list[min(offset, src.size):min(offset+limit, src.size)], src.size
		}
		return a.unionPage(src.sets, offset, limit, src.size), src.size
	}
	// Drive from the source that selects fewest; test the others.
	d := -1
	for i := range kept {
		if !kept[i].scan && (d < 0 || kept[i].size < kept[d].size) {
			d = i
		}
	}
	var walk func() *entry
	switch {
	case d < 0:
		walk = a.all.Walk(0)
	case kept[d].listed:
		i := 0
		walk = func() *entry {
			if i == len(kept[d].list) {
				return nil
			}
			i++
			return kept[d].list[i-1]
		}
	default:
		walk = newMerger(kept[d].sets, nil).Next
	}
	var page []*entry
	total := 0
next:
	for e := walk(); e != nil; e = walk() {
		for i := range kept {
			if i != d && !kept[i].test(e) {
				continue next
			}
		}
		if total >= offset && len(page) < limit {
			page = append(page, e)
		}
		total++
	}
	return page, total
}

// take returns the next limit elements next gives (fewer at its end).
func take(next func() *entry, limit int) []*entry {
	var page []*entry
	for len(page) < limit {
		e := next()
		if e == nil {
			break
		}
		page = append(page, e)
	}
	return page
}

// unionPage returns the page [offset, offset+limit) of the union of disjoint sets holding size
// HAVIPs of the account: it finds the offset-th by a binary search over the account's HAVIPs
// (each step ranks one HAVIP in every set), then merges the sets from there.
func (a *accountIndex) unionPage(sets []run, offset, limit, size int) []*entry {
	if offset >= size {
		return nil
	}
	if len(sets) == 1 {
		return take(sets[0].Walk(offset), limit)
	}
	// The first HAVIP at or before which more than offset HAVIPs of the union are.
	lo, hi := 0, a.all.Len()-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		b, before := boundOf(a.all.At(m)), 0
		for _, r := range sets {
			before += r.Rank(b, true)
		}
		if before > offset {
			hi = m
		} else {
			lo = m + 1
		}
	}
	from := boundOf(a.all.At(lo))
	return take(newMerger(sets, &from).Next, limit)
}

// merger walks the union of runs in order, each element once.
type merger struct {
	walks []func() *entry
	heads []*entry
}

// newMerger starts at from (nil: at the start).
func newMerger(runs []run, from *cbound) *merger {
	m := &merger{walks: make([]func() *entry, len(runs)), heads: make([]*entry, len(runs))}
	for i, r := range runs {
		at := 0
		if from != nil {
			at = r.Rank(*from, false)
		}
		m.walks[i] = r.Walk(at)
		m.heads[i] = m.walks[i]()
	}
	return m
}

// Next returns the next element of the union, or nil at its end.
func (m *merger) Next() *entry {
	best := -1
	for i, h := range m.heads {
		if h != nil && (best < 0 || before(h, m.heads[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	e := m.heads[best]
	for i, h := range m.heads {
		if h != nil && !before(e, h) { // h is e (in two runs)
			m.heads[i] = m.walks[i]()
		}
	}
	return e
}
