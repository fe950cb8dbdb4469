package store

import (
	"math"
	"net/netip"
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

func (byName) of(e *entry) string  { return e.Value.name }
func (byName) cmp(a, b string) int { return strings.Compare(a, b) }

type byVIP struct{}

func (byVIP) of(e *entry) netip.Addr  { return e.Value.vip() }
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

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (ix *index) add(e *entry) {
	r := &e.Value
	loc := r.loc.Value()
	a := ix.accounts[loc.account]
	if a == nil {
		a = &accountIndex{}
		ix.accounts[loc.account] = a
	}
	a.all.Put(e)
	a.names.Put(e)
	a.vips.Put(e)
	a.checks[b2i(r.check)].Put(e)
	putIn(&a.vpcs, loc.vpc, e)
	putIn(&a.subnets, loc.subnet, e)
	for _, x := range r.assoc {
		putIn(&a.instances, x.id.Value(), e) // a second Put of e in one set only replaces it
		putIn(&a.types, x.typ.Value(), e)
	}
}

func (ix *index) remove(e *entry) {
	r := &e.Value
	loc := r.loc.Value()
	a := ix.accounts[loc.account]
	if a == nil {
		return
	}
	b := boundOf(e)
	a.all.Delete(b)
	a.names.Delete(a.names.boundOf(e))
	a.vips.Delete(a.vips.boundOf(e))
	a.checks[b2i(r.check)].Delete(b)
	deleteIn(a.vpcs, loc.vpc, b)
	deleteIn(a.subnets, loc.subnet, b)
	for _, x := range r.assoc {
		deleteIn(a.instances, x.id.Value(), b)
		deleteIn(a.types, x.typ.Value(), b)
	}
	if a.all.Len() == 0 {
		delete(ix.accounts, loc.account)
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
