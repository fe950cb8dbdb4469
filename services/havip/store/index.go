package store

import (
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
)

// index holds, per account, the account's HAVIPs in creation order, and for each indexed field
// the HAVIPs by value, each value's in creation order. The HAVIP cache's hook keeps it; it is read
// under the cache's lock.
type index struct {
	accounts map[string]*accountIndex
}

// accountIndex is an account's HAVIPs. A field most HAVIPs have a value of their own of (name,
// VIP) is one set ordered by value, then creation (a value's HAVIPs are a run of it); a field of
// few values (VPC, subnet, range check, switch-range instance and type) has a set per value.
type accountIndex struct {
	all       cset
	names     ordset[string, byName]
	vips      ordset[netip.Addr, byVIP]
	vpcs      map[string]cset
	subnets   map[string]cset
	checks    [2]cset // by CheckAssociate: false, true
	instances map[string]cset
	types     map[string]cset
}

type byName struct{}

func (byName) of(e *entry) string  { return e.Value.Name() }
func (byName) cmp(a, b string) int { return strings.Compare(a, b) }

type byVIP struct{}

func (byVIP) of(e *entry) netip.Addr  { return e.Value.VIP() }
func (byVIP) cmp(a, b netip.Addr) int { return a.Compare(b) }

func newIndex() *index { return &index{accounts: map[string]*accountIndex{}} }

// hook is the HAVIP cache's hook. Each change costs O(log n) per set the HAVIP is in — about
// ten — whatever the order of the changes, so a cold load of n HAVIPs costs O(n log n).
func (ix *index) hook(prev, cur *entry, _ int64) {
	if prev != nil {
		ix.remove(prev)
	}
	if cur != nil {
		ix.add(cur)
	}
}

// load is the HAVIP cache's loader: it indexes a first load (items in creation order) at once,
// each set built from its elements in order (O(n log n) for the two sets ordered by value, O(n)
// for the others), rather than put one by one.
func (ix *index) load(items []*entry) {
	byAccount := map[string][]*entry{}
	for _, e := range items {
		a := e.Value.Account()
		byAccount[a] = append(byAccount[a], e)
	}
	for account, es := range byAccount {
		a := &accountIndex{} // a loader comes first: nothing is indexed yet
		ix.accounts[account] = a
		a.all = fromSorted[struct{}, creation](es)
		a.names = fromSorted[string, byName](sorted[string, byName](es))
		a.vips = fromSorted[netip.Addr, byVIP](sorted[netip.Addr, byVIP](es))
		var checks [2][]*entry
		var vpcs, subnets, instances, types map[string][]*entry
		for _, e := range es {
			r := &e.Value
			checks[b2i(r.CheckAssociate())] = append(checks[b2i(r.CheckAssociate())], e)
			appendTo(&vpcs, r.VpcID(), e)
			appendTo(&subnets, r.SubnetID(), e)
			for _, x := range r.Associations() {
				appendTo(&instances, x.InstanceID(), e)
				appendTo(&types, x.Type(), e)
			}
		}
		for i, es := range checks {
			a.checks[i] = fromSorted[struct{}, creation](es)
		}
		a.vpcs, a.subnets, a.instances, a.types = csets(vpcs), csets(subnets), csets(instances), csets(types)
	}
}

// sorted is es in the order of a set by F.
func sorted[K any, F keyFn[K]](es []*entry) []*entry {
	out := slices.Clone(es)
	slices.SortFunc(out, func(a, b *entry) int { return cmpAt[K, F](a, boundIn[K, F](b)) })
	return out
}

// appendTo appends e to the list of k in *m, once (an entry whose switch range names an instance
// twice is in its set once).
func appendTo(m *map[string][]*entry, k string, e *entry) {
	if *m == nil {
		*m = map[string][]*entry{}
	}
	if l := (*m)[k]; len(l) == 0 || l[len(l)-1] != e {
		(*m)[k] = append(l, e)
	}
}

// csets is the sets of lists in creation order.
func csets(m map[string][]*entry) map[string]cset {
	if m == nil {
		return nil
	}
	out := make(map[string]cset, len(m))
	for k, es := range m {
		out[k] = fromSorted[struct{}, creation](es)
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (ix *index) add(e *entry) {
	r := &e.Value
	account := r.Account()
	a := ix.accounts[account]
	if a == nil {
		a = &accountIndex{}
		ix.accounts[account] = a
	}
	a.all.Put(e)
	a.names.Put(e)
	a.vips.Put(e)
	a.checks[b2i(r.CheckAssociate())].Put(e)
	putIn(&a.vpcs, r.VpcID(), e)
	putIn(&a.subnets, r.SubnetID(), e)
	for _, x := range r.Associations() {
		putIn(&a.instances, x.InstanceID(), e) // a second Put of e in one set only replaces it
		putIn(&a.types, x.Type(), e)
	}
}

func (ix *index) remove(e *entry) {
	r := &e.Value
	account := r.Account()
	a := ix.accounts[account]
	if a == nil {
		return
	}
	b := boundOf(e)
	a.all.Delete(b)
	a.names.Delete(a.names.boundOf(e))
	a.vips.Delete(a.vips.boundOf(e))
	a.checks[b2i(r.CheckAssociate())].Delete(b)
	deleteIn(a.vpcs, r.VpcID(), b)
	deleteIn(a.subnets, r.SubnetID(), b)
	for _, x := range r.Associations() {
		deleteIn(a.instances, x.InstanceID(), b)
		deleteIn(a.types, x.Type(), b)
	}
	if a.all.Len() == 0 {
		delete(ix.accounts, account)
	}
}

func putIn(m *map[string]cset, k string, e *entry) {
	if *m == nil {
		*m = map[string]cset{}
	}
	s := (*m)[k]
	s.Put(e)
	(*m)[k] = s
}

func deleteIn(m map[string]cset, k string, b cbound) {
	s, ok := m[k]
	if !ok {
		return
	}
	s.Delete(b)
	if s.Len() == 0 {
		delete(m, k)
	} else {
		m[k] = s
	}
}

// A run is a sequence of an account's HAVIPs in creation order: a cset, or one value's part of a
// set ordered by value.
type run interface {
	Len() int
	// Rank is the number of its HAVIPs before b (inclusive: at or before b).
	Rank(b cbound, inclusive bool) int
	// Walk returns a function that gives its HAVIPs from the i-th on, one a call, then nil.
	Walk(i int) func() *entry
}

// Walk returns a function that gives s's elements from the i-th on, one a call, then nil.
func (s *ordset[K, F]) Walk(i int) func() *entry {
	c := s.From(i)
	return c.Next
}

// valueRun is the run of a set ordered by value that has value v: positions [lo, lo+n).
type valueRun[K any, F keyFn[K]] struct {
	s     *ordset[K, F]
	v     K
	lo, n int
}

func runOf[K any, F keyFn[K]](s *ordset[K, F], v K) valueRun[K, F] {
	lo := s.Rank(bound[K]{v: v, rev: math.MinInt64}, false)
	return valueRun[K, F]{s, v, lo, s.Rank(bound[K]{v: v, rev: math.MaxInt64}, false) - lo}
}

func (r valueRun[K, F]) Len() int { return r.n }

func (r valueRun[K, F]) Rank(b cbound, inclusive bool) int {
	return r.s.Rank(bound[K]{r.v, b.rev, b.key}, inclusive) - r.lo
}

func (r valueRun[K, F]) Walk(i int) func() *entry {
	next, left := r.s.Walk(r.lo+i), r.n-i
	return func() *entry {
		if left <= 0 {
			return nil
		}
		left--
		return next()
	}
}

// addressIndex finds HAVIPs by the IP of the EIP bound to them. The address cache's hook keeps
// it; it is read under that cache's lock.
type addressIndex struct {
	byIP map[netip.Addr][]string // canonical IPs (the form eipbind writes) → HAVIP IDs
	odd  map[string][]string     // any other address_ip → HAVIP IDs
}

func newAddressIndex() *addressIndex {
	return &addressIndex{byIP: map[netip.Addr][]string{}, odd: map[string][]string{}}
}

// parseCanonical parses s as an IP written in its canonical form (as netip.Addr.String writes it).
func parseCanonical(s string) (netip.Addr, bool) {
	if s == (netip.Addr{}).String() {
		return netip.Addr{}, true
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil && a.String() == s
}

func (ax *addressIndex) hook(prev, cur *kvcache.Item[records.AddressBinding], _ int64) {
	if prev != nil {
		id := strings.TrimPrefix(prev.Key, records.HaVipAddresses)
		if a, ok := parseCanonical(prev.Value.AddressIP); ok {
			ax.byIP[a] = without(ax.byIP[a], id)
			if len(ax.byIP[a]) == 0 {
				delete(ax.byIP, a)
			}
		} else {
			ax.odd[prev.Value.AddressIP] = without(ax.odd[prev.Value.AddressIP], id)
			if len(ax.odd[prev.Value.AddressIP]) == 0 {
				delete(ax.odd, prev.Value.AddressIP)
			}
		}
	}
	if cur != nil {
		id := strings.TrimPrefix(cur.Key, records.HaVipAddresses)
		if a, ok := parseCanonical(cur.Value.AddressIP); ok {
			ax.byIP[a] = append(ax.byIP[a], id)
		} else {
			ax.odd[cur.Value.AddressIP] = append(ax.odd[cur.Value.AddressIP], id)
		}
	}
}

func without(ids []string, id string) []string {
	for i, x := range ids {
		if x == id {
			ids[i] = ids[len(ids)-1]
			return ids[:len(ids)-1]
		}
	}
	return ids
}

// lookup returns the HAVIPs the EIP with address ip is bound to.
func (ax *addressIndex) lookup(ip string) []string {
	if a, ok := parseCanonical(ip); ok {
		return ax.byIP[a]
	}
	return ax.odd[ip]
}
