package ipalloc

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/kvcache"
)

// poolOf is a pool of size addresses from 10.0.0.0 whose offsets used are taken.
func poolOf(size int, used ...int) *pool {
	var ranges []Range
	if size > 0 {
		ranges = []Range{{First: Addr(0x0a000000), Last: Addr(0x0a000000 + uint32(size) - 1)}}
	}
	p := newPool("p", ranges)
	for _, off := range used {
		p.mark(off, true)
	}
	return p
}

// usedOffsets lists the offsets p marks used, below its size.
func usedOffsets(p *pool) []int {
	var used []int
	for off := range p.size {
		if isSet(p, off) {
			used = append(used, off)
		}
	}
	return used
}

func isSet(p *pool, off int) bool { return p.bits[off/64]&(1<<(off%64)) != 0 }

// TestShape: the bitmap of a fresh pool has one bit per address, rounded up to whole words; the
// bits past the pool's size are set so that they are never handed out, and the bits of the
// addresses already known to be used are set too.
func TestShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		size      int
		wantWords int
	}{
		{name: "one address", size: 1, wantWords: 1},
		{name: "a /29 subnet", size: 5, wantWords: 1},
		{name: "one short of a word", size: 63, wantWords: 1},
		{name: "a word", size: 64, wantWords: 1},
		{name: "a word and one", size: 65, wantWords: 2},
		{name: "two words", size: 128, wantWords: 2},
		{name: "a /24 subnet", size: 253, wantWords: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := poolOf(tc.size)
			if p.size != tc.size || len(p.bits) != tc.wantWords {
				t.Fatalf("size %d in %d words, want %d in %d", p.size, len(p.bits), tc.size, tc.wantWords)
			}
			for off := range len(p.bits) * 64 {
				if got, want := isSet(p, off), off >= tc.size; got != want {
					t.Errorf("bit %d set: %v, want %v", off, got, want)
				}
			}
		})
	}
}

// TestFill: a pool read is marked used at the addresses the read found (those outside it
// ignored); of the changes the watch brought during the read, those up to the read's revision
// are in the read already and are skipped, the later ones are applied in order; the pool is then
// current as of the read, with its count.
func TestFill(t *testing.T) {
	t.Parallel()
	p := newPool("p", []Range{rng("10.0.0.1", "10.0.0.10")})
	p.propose(4, time.Now().Add(time.Minute))
	p.hold[6] = 12
	p.hold[7] = 9             // created by us at 9: the read has it
	p.hold[2] = math.MaxInt64 // a transaction of ours is trying it
	var used []netip.Addr
	for _, a := range []string{"10.0.0.2", "10.0.0.9", "10.0.0.4", "10.0.1.0", "192.168.0.1"} {
		used = append(used, netip.MustParseAddr(a))
	}
	p.fill(used, 10, []change{
		{off: 1, used: false, rev: 9},  // 10.0.0.2 deleted before the read: it read it back since
		{off: 8, used: false, rev: 11}, // 10.0.0.9 deleted after the read
		{off: 4, used: true, rev: 12},  // 10.0.0.5 created after the read (the proposal taken)
		{off: 6, used: true, rev: 12},  // 10.0.0.7 created at the hold's revision
		{off: 6, used: false, rev: 13}, // and deleted again
		{off: 0, used: true, rev: 10},  // at the read's revision: the read has what it left
	})
	if diff := cmp.Diff([]int{1, 3, 4}, usedOffsets(p)); diff != "" {
		t.Errorf("used offsets (-want +got):\n%s", diff)
	}
	if p.n != 3 || p.state != current || p.read != 10 {
		t.Errorf("count %d, state %d, read at %d; want 3, current, 10", p.n, p.state, p.read)
	}
	if _, ok := p.proposed[4]; ok || p.proposedBits[0] != 0 {
		t.Errorf("a proposal taken during the read is still held (bits %b)", p.proposedBits[0])
	}
	if diff := cmp.Diff(map[int]int64{2: math.MaxInt64}, p.hold); diff != "" {
		t.Errorf("holds after the read: the caught-up ones go, the in-flight one stays (-want +got):\n%s", diff)
	}
	// A second read starts afresh.
	p.fill([]netip.Addr{netip.MustParseAddr("10.0.0.10")}, 20, nil)
	if diff := cmp.Diff([]int{9}, usedOffsets(p)); diff != "" || p.n != 1 {
		t.Errorf("after a second read: count %d, used offsets (-want +got):\n%s", p.n, diff)
	}
}

// TestCandidate: the next free offset is one whose bit is clear and that is not held. The
// search starts at a random word and wraps around past the last one, takes the lowest free bit
// of the first word that has one, skips offsets held by a transaction in flight or by a
// revision the cache has not reached, and releases holds the cache has caught up with; a full
// pool (or one without addresses) has no candidate.
func TestCandidate(t *testing.T) {
	t.Parallel()
	allBut := func(size int, free ...int) []int {
		var used []int
		for off := range size {
			if !containsInt(free, off) {
				used = append(used, off)
			}
		}
		return used
	}
	tests := []struct {
		name    string
		size    int
		used    []int
		hold    map[int]int64
		applied int64
		// proposed gives offsets proposed until now plus the duration (negative: expired).
		proposed map[int]time.Duration
		// want is every offset the search may return (one per word that has a free one).
		want []int
		// wantHold is the holds left afterwards.
		wantHold map[int]int64
		// wantProposed is the proposals left afterwards.
		wantProposed []int
	}{
		{name: "empty pool of one word", size: 10, want: []int{0}},
		{name: "lowest free bit of the word", size: 64, used: []int{0, 1, 2, 4}, want: []int{3}},
		{name: "wraps around to the first word", size: 256, used: allBut(256, 3), want: []int{3}},
		{name: "free bit in the last word", size: 256, used: allBut(256, 255), want: []int{255}},
		{name: "last word is partial", size: 200, used: allBut(200, 199), want: []int{199}},
		{name: "one free per word", size: 256, used: allBut(256, 5, 70, 140, 250), want: []int{5, 70, 140, 250}},
		{name: "full pool", size: 200, used: allBut(200), want: []int{-1}},
		{name: "full single word", size: 64, used: allBut(64), want: []int{-1}},
		{name: "pool without addresses", size: 0, want: []int{-1}},
		{
			name: "skips an offset in flight", size: 64, used: allBut(64, 7, 9),
			hold: map[int]int64{7: math.MaxInt64}, applied: 100,
			want: []int{9}, wantHold: map[int]int64{7: math.MaxInt64},
		},
		{
			name: "only offset is in flight", size: 64, used: allBut(64, 7),
			hold: map[int]int64{7: math.MaxInt64}, applied: 100,
			want: []int{-1}, wantHold: map[int]int64{7: math.MaxInt64},
		},
		{
			name: "skips an offset the cache is behind on", size: 64, used: allBut(64, 7, 9),
			hold: map[int]int64{7: 11}, applied: 10,
			want: []int{9}, wantHold: map[int]int64{7: 11},
		},
		{
			name: "releases a hold the cache caught up with", size: 64, used: allBut(64, 7),
			hold: map[int]int64{7: 10}, applied: 10,
			want: []int{7}, wantHold: map[int]int64{},
		},
		{
			name: "hold on a used offset stays", size: 64, used: allBut(64, 9),
			hold: map[int]int64{7: 10}, applied: 20,
			want: []int{9}, wantHold: map[int]int64{7: 10},
		},
		{
			name: "skips a proposed offset", size: 64, used: allBut(64, 7, 9),
			proposed: map[int]time.Duration{7: time.Second}, want: []int{9}, wantProposed: []int{7},
		},
		{
			name: "skips a proposed offset past the first word", size: 128, used: allBut(128, 70, 100),
			proposed: map[int]time.Duration{70: time.Second}, want: []int{100}, wantProposed: []int{70},
		},
		{
			name: "an expired proposal holds nothing", size: 64, used: allBut(64, 7),
			proposed: map[int]time.Duration{7: -time.Second}, want: []int{7},
		},
		{
			name: "an expired proposal waits behind an offset never proposed", size: 64, used: allBut(64, 7, 9),
			proposed: map[int]time.Duration{7: -time.Second}, want: []int{9}, wantProposed: []int{7},
		},
		{
			name: "a proposed offset when nothing else is free", size: 128, used: allBut(128, 7, 70),
			hold: map[int]int64{70: 11}, applied: 10, proposed: map[int]time.Duration{7: time.Second},
			want: []int{7}, wantHold: map[int]int64{70: 11}, wantProposed: []int{7},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seen := map[int]bool{}
			// The start is random: enough tries that every word is a start many times over.
			for range 64 * max(1, len(poolOf(tc.size).bits)) {
				p := poolOf(tc.size, tc.used...)
				for k, v := range tc.hold {
					p.hold[k] = v
				}
				now := time.Now()
				for k, d := range tc.proposed {
					p.propose(k, now.Add(d))
				}
				got := p.candidate(tc.applied, now)
				if !containsInt(tc.want, got) {
					t.Fatalf("candidate = %d, want one of %v", got, tc.want)
				}
				var proposed []int
				for off := range p.size {
					_, inMap := p.proposed[off]
					if inBits := p.proposedBits[off/64]&(1<<(off%64)) != 0; inMap != inBits {
						t.Fatalf("offset %d: proposed %v, its bit %v", off, inMap, inBits)
					}
					if inMap {
						proposed = append(proposed, off)
					}
				}
				if diff := cmp.Diff(tc.wantProposed, proposed, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("proposals after candidate %d (-want +got):\n%s", got, diff)
				}
				seen[got] = true
				if diff := cmp.Diff(tc.wantHold, p.hold, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("holds after candidate %d (-want +got):\n%s", got, diff)
				}
			}
			var got []int
			for off := range seen {
				got = append(got, off)
			}
			sort.Ints(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("offsets returned (-want +got):\n%s", diff)
			}
		})
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestObserve: the watch's puts and deletes under the allocator's root set and clear the bit of
// the address in a pool read (and its count) when they come after the read, release a hold once
// the cache reaches its revision, and ignore keys that are not an IPv4 address of a pool.
func TestObserve(t *testing.T) {
	t.Parallel()
	a := &Allocator{root: "/ips/", pools: map[string]*pool{}}
	item := func(key string, rev int64) *kvcache.Item[struct{}] {
		return &kvcache.Item[struct{}]{Key: key, ModRevision: rev, CreateRevision: rev}
	}
	put := func(key string, rev int64) { a.observe(nil, item(key, rev), rev) }
	del := func(key string, rev int64) { a.observe(item(key, rev), nil, rev) }

	a.mu.Lock()
	ps := a.poolLocked("sn", []Range{rng("10.0.0.2", "10.0.0.14")})
	ps.fill([]netip.Addr{netip.MustParseAddr("10.0.0.5")}, 2, nil)
	ps.hold[5] = 7             // 10.0.0.7: we created it at revision 7
	ps.hold[6] = math.MaxInt64 // 10.0.0.8: a transaction of ours is trying it
	a.mu.Unlock()

	steps := []struct {
		name     string
		do       func()
		wantUsed []int
		wantHold map[int]int64
	}{
		{name: "the read's address", do: func() {}, wantUsed: []int{3}, wantHold: map[int]int64{5: 7, 6: math.MaxInt64}},
		{name: "a change up to the read's revision is in the read", do: func() { del("/ips/sn/10.0.0.5", 2) }, wantUsed: []int{3}, wantHold: map[int]int64{5: 7, 6: math.MaxInt64}},
		{name: "put sets", do: func() { put("/ips/sn/10.0.0.2", 3) }, wantUsed: []int{0, 3}, wantHold: map[int]int64{5: 7, 6: math.MaxInt64}},
		{name: "put of the last address", do: func() { put("/ips/sn/10.0.0.14", 4) }, wantUsed: []int{0, 3, 12}, wantHold: map[int]int64{5: 7, 6: math.MaxInt64}},
		{name: "delete clears", do: func() { del("/ips/sn/10.0.0.5", 5) }, wantUsed: []int{0, 12}, wantHold: map[int]int64{5: 7, 6: math.MaxInt64}},
		{name: "put at the hold's revision releases it", do: func() { put("/ips/sn/10.0.0.7", 7) }, wantUsed: []int{0, 5, 12}, wantHold: map[int]int64{6: math.MaxInt64}},
		{name: "put under an in-flight hold keeps it", do: func() { put("/ips/sn/10.0.0.8", 8) }, wantUsed: []int{0, 5, 6, 12}, wantHold: map[int]int64{6: math.MaxInt64}},
		{name: "address outside the ranges ignored", do: func() { put("/ips/sn/10.0.0.15", 9) }, wantUsed: []int{0, 5, 6, 12}, wantHold: map[int]int64{6: math.MaxInt64}},
		{name: "other root ignored", do: func() { put("/other/sn/10.0.0.3", 10) }, wantUsed: []int{0, 5, 6, 12}, wantHold: map[int]int64{6: math.MaxInt64}},
		{name: "key without an address ignored", do: func() { put("/ips/sn", 11) }, wantUsed: []int{0, 5, 6, 12}, wantHold: map[int]int64{6: math.MaxInt64}},
		{name: "malformed address ignored", do: func() { put("/ips/sn/10.0.0.300", 12) }, wantUsed: []int{0, 5, 6, 12}, wantHold: map[int]int64{6: math.MaxInt64}},
		{name: "IPv6 address ignored", do: func() { put("/ips/sn/fd00::3", 13) }, wantUsed: []int{0, 5, 6, 12}, wantHold: map[int]int64{6: math.MaxInt64}},
	}
	for _, s := range steps {
		s.do()
		a.mu.Lock()
		if diff := cmp.Diff(s.wantUsed, usedOffsets(ps)); diff != "" {
			t.Errorf("%s: used offsets (-want +got):\n%s", s.name, diff)
		}
		if ps.n != len(s.wantUsed) {
			t.Errorf("%s: count %d, want %d", s.name, ps.n, len(s.wantUsed))
		}
		if diff := cmp.Diff(s.wantHold, ps.hold, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: holds (-want +got):\n%s", s.name, diff)
		}
		a.mu.Unlock()
	}
	if _, ok := a.pools["other"]; ok {
		t.Error("a key under another root made a pool")
	}
}

// TestObserveKeepsOnlyPoolsInUse: a change of a pool never used makes no pool; a change of a
// pool being read is kept for the read; a pool read loses its last address and, with nothing
// else to keep, is dropped (read again at its next use); a reset of the watch makes every pool
// unread, and drops those with nothing to keep.
func TestObserveKeepsOnlyPoolsInUse(t *testing.T) {
	t.Parallel()
	a := &Allocator{root: "/ips/", pools: map[string]*pool{}, log: etcdtest.Quiet}
	it := &kvcache.Item[struct{}]{Key: "/ips/sn/10.0.0.5", ModRevision: 2}
	a.observe(nil, it, 2)
	if len(a.pools) != 0 {
		t.Fatalf("a change made pools %v", a.pools)
	}
	ps := a.poolLocked("sn", []Range{rng("10.0.0.1", "10.0.0.10")})
	ps.state = reading
	a.observe(it, nil, 3)
	if diff := cmp.Diff([]change{{off: 4, used: false, rev: 3}}, ps.missed, cmp.AllowUnexported(change{})); diff != "" {
		t.Fatalf("changes kept during the read (-want +got):\n%s", diff)
	}
	ps.fill([]netip.Addr{netip.MustParseAddr("10.0.0.5")}, 2, ps.missed)
	if ps.n != 0 {
		t.Fatalf("count %d after the read and its missed delete, want 0", ps.n)
	}
	a.observe(nil, &kvcache.Item[struct{}]{Key: "/ips/sn/10.0.0.6", ModRevision: 4}, 4)
	if ps.n != 1 || a.pools["sn"] != ps {
		t.Fatalf("count %d after a put (pool kept: %v)", ps.n, a.pools["sn"] == ps)
	}
	a.observe(&kvcache.Item[struct{}]{Key: "/ips/sn/10.0.0.6"}, nil, 5)
	if _, ok := a.pools["sn"]; ok {
		t.Error("idle pool still kept after its last address was deleted")
	}

	busy := a.poolLocked("busy", []Range{rng("10.0.0.1", "10.0.0.10")})
	busy.fill([]netip.Addr{netip.MustParseAddr("10.0.0.5")}, 5, nil)
	busy.hold[1] = math.MaxInt64
	quiet := a.poolLocked("quiet", []Range{rng("10.0.0.1", "10.0.0.10")})
	quiet.fill([]netip.Addr{netip.MustParseAddr("10.0.0.5")}, 5, nil)
	a.reset(9)
	if busy.state != unread || a.pools["busy"] != busy {
		t.Errorf("after a reset, a pool in use: state %d, kept %v; want unread, kept", busy.state, a.pools["busy"] == busy)
	}
	if _, ok := a.pools["quiet"]; ok {
		t.Error("after a reset, a pool with nothing to keep is still kept")
	}
}

// TestAllocateOutsideRanges: asking for an address outside the pool's ranges (including its
// reserved addresses) fails at once with InvalidParameterValue.Range, before reaching etcd.
func TestAllocateOutsideRanges(t *testing.T) {
	t.Parallel()
	r, err := CIDRHosts(netip.MustParsePrefix("10.0.0.0/29"), 1)
	if err != nil {
		t.Fatal(err)
	}
	p := Pool{ID: "sn", Ranges: []Range{r}}
	for _, addr := range []string{"10.0.0.0", "10.0.0.1", "10.0.0.7", "10.0.0.8", "192.168.0.2"} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			a := &Allocator{root: "/ips/", pools: map[string]*pool{}} // no etcd: it must not be reached
			_, err := a.Allocate(t.Context(), p, Request{Addr: netip.MustParseAddr(addr)})
			if got := apierr.Reason(err); got != apierr.ReasonRange {
				t.Errorf("Allocate(%s): %v (reason %q), want reason %s", addr, err, got, apierr.ReasonRange)
			}
		})
	}
}

// TestAllocateUntilFull: against a real etcd, a pool hands out each of its addresses once and
// then fails with ResourceInsufficient; a pool without addresses fails at once (rather than
// panicking in the allocator's goroutine).
func TestAllocateUntilFull(t *testing.T) {
	t.Parallel()
	_, cli := etcdtest.Fresh(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	a := started(t, cli, "/test/ipalloc/")
	tests := []struct {
		name   string
		ranges []Range
		want   []string // in address order
	}{
		{name: "no ranges"},
		{name: "one address", ranges: []Range{rng("10.0.0.9", "10.0.0.9")}, want: []string{"10.0.0.9"}},
		{name: "two ranges", ranges: []Range{rng("10.0.1.5", "10.0.1.6"), rng("10.0.0.1", "10.0.0.1")}, want: []string{"10.0.0.1", "10.0.1.5", "10.0.1.6"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Pool{ID: strings.ReplaceAll(tc.name, " ", "-"), Ranges: tc.ranges}
			var got []string
			for range len(tc.want) {
				al, err := a.Allocate(ctx, p, Request{Owner: "o", Account: "acct"})
				if err != nil {
					t.Fatalf("allocation %d of %d: %v", len(got)+1, len(tc.want), err)
				}
				got = append(got, al.Addr.String())
			}
			sort.Slice(got, func(i, j int) bool {
				return netip.MustParseAddr(got[i]).Less(netip.MustParseAddr(got[j]))
			})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("addresses handed out (-want +got):\n%s", diff)
			}
			if _, err := a.Allocate(ctx, p, Request{}); apierr.Reason(err) != apierr.ReasonResourceInsufficient {
				t.Errorf("allocation from the full pool: %v, want %s", err, apierr.ReasonResourceInsufficient)
			}
		})
	}
}

// TestPropose: against a real etcd, proposals write nothing; they differ from one another and
// from this replica's allocations while other addresses are free; a proposal is held until its
// key appears (created by the caller with CommitOpsAt and Revision 0, which fails once the key
// exists); and when only proposed addresses are left they are proposed and allocated again
// rather than refused.
func TestPropose(t *testing.T) {
	t.Parallel()
	_, cli := etcdtest.Fresh(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	const root = "/test/propose/"
	a := started(t, cli, root)
	p := Pool{ID: "p", Ranges: []Range{rng("10.0.0.1", "10.0.0.4")}}
	before, err := cli.Get(ctx, root, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	first := propose(t, a, p, 2)
	second := propose(t, a, p, 1)
	al, err := a.Allocate(ctx, p, Request{Owner: "eni", Account: "acct"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	for _, addr := range append(append(first, second...), al.Addr) {
		if seen[addr] {
			t.Fatalf("%s handed out twice: proposals %v, %v, allocation %s", addr, first, second, al.Addr)
		}
		seen[addr] = true
	}
	if len(seen) != 4 {
		t.Fatalf("proposals %v, %v and allocation %s: want 4 distinct addresses", first, second, al.Addr)
	}
	after, err := cli.Get(ctx, root, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if after.Count != before.Count+1 {
		t.Fatalf("%d keys after proposals and one allocation, want %d", after.Count, before.Count+1)
	}

	// The caller creates a proposed address's key; a second create of it fails.
	create := func(addr netip.Addr, owner string) bool {
		t.Helper()
		cmp, put := CommitOpsAt(root, Allocation{Pool: p.ID, Addr: addr, Record: Record{Account: "acct"}}, owner)
		resp, err := cli.Txn(ctx).If(cmp).Then(put).Commit()
		if err != nil {
			t.Fatal(err)
		}
		return resp.Succeeded
	}
	if !create(first[0], "havip-a") {
		t.Fatalf("create of proposed %s failed", first[0])
	}
	if create(first[0], "havip-b") {
		t.Fatalf("a second create of %s succeeded", first[0])
	}
	if err := a.WaitRevision(ctx, after.Header.Revision+1); err != nil {
		t.Fatal(err)
	}
	// Two addresses are left, both proposed: they are proposed again rather than refused, and
	// the allocator still allocates one.
	again := propose(t, a, p, 3)
	if len(again) != 1 || (again[0] != first[1] && again[0] != second[0]) {
		t.Fatalf("with only %s and %s left, both proposed: proposed %v, want one of them", first[1], second[0], again)
	}
	// Proposing them again in a loop keeps their holds as they are: nothing more is queued.
	a.mu.Lock()
	queued := len(a.pools[p.ID].proposals)
	a.mu.Unlock()
	for range 100 {
		propose(t, a, p, 1)
	}
	a.mu.Lock()
	if n := len(a.pools[p.ID].proposals); n != queued {
		t.Errorf("100 proposals of held addresses: %d holds queued, want the %d there were", n, queued)
	}
	a.mu.Unlock()
	al, err = a.Allocate(ctx, p, Request{Owner: "eni", Account: "acct"})
	if err != nil || (al.Addr != first[1] && al.Addr != second[0]) {
		t.Fatalf("allocation with only proposed addresses left: %v, %v", al.Addr, err)
	}
}

// TestProposeIsBounded: a caller proposing in a loop holds at most maxProposed addresses of a
// pool; past that, proposals are still made (distinct within a call, if fewer), without a hold.
func TestProposeIsBounded(t *testing.T) {
	t.Parallel()
	_, cli := etcdtest.Fresh(t)
	a := started(t, cli, "/test/propose-bounded/")
	p := Pool{ID: "p", Ranges: []Range{rng("10.0.0.1", "10.0.255.254")}} // 65,534 addresses
	for i := range 2 * maxProposed / 100 {
		got := propose(t, a, p, 100)
		if len(got) == 0 || (i < maxProposed/100 && len(got) != 100) {
			t.Fatalf("call %d proposed %d addresses", i, len(got))
		}
		seen := map[netip.Addr]bool{}
		for _, addr := range got {
			if seen[addr] {
				t.Fatalf("call %d proposed %s twice: %v", i, addr, got)
			}
			seen[addr] = true
		}
	}
	a.mu.Lock()
	held, bitsSet := len(a.pools[p.ID].proposed), 0
	for _, w := range a.pools[p.ID].proposedBits {
		bitsSet += bits.OnesCount64(w)
	}
	a.mu.Unlock()
	if held != maxProposed || bitsSet != maxProposed {
		t.Errorf("%d proposals held (%d bits) after %d proposed, want the bound %d", held, bitsSet, 2*maxProposed, maxProposed)
	}
}

// TestProposalsExpire: the holds of proposals end after ProposalHold, and a pool left with
// nothing (its subnet deleted, say) is then dropped, so that proposing in a loop leaves nothing
// behind in the replica.
func TestProposalsExpire(t *testing.T) {
	t.Parallel()
	_, cli := etcdtest.Fresh(t)
	a := started(t, cli, "/test/propose-expire/")
	p := Pool{ID: "p", Ranges: []Range{rng("10.0.0.1", "10.0.255.254")}}
	for range 3 {
		if got := propose(t, a, p, 100); len(got) != 100 {
			t.Fatalf("proposed %d, want 100", len(got))
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ps := a.pools[p.ID]
	if ps == nil || len(ps.proposed) != 300 || len(ps.proposals) != 300 || ps.sweep == nil {
		t.Fatalf("after 300 proposals: pool %v", ps != nil)
	}
	a.sweepLocked(ps, time.Now().Add(ProposalHold/2))
	if len(ps.proposed) != 300 || a.pools[p.ID] != ps {
		t.Fatalf("a sweep before the holds end dropped them: %d held", len(ps.proposed))
	}
	a.sweepLocked(ps, time.Now().Add(ProposalHold+time.Second))
	if len(ps.proposed) != 0 || len(ps.proposals) != 0 || slices.ContainsFunc(ps.proposedBits, func(w uint64) bool { return w != 0 }) {
		t.Errorf("after the holds ended: %d held, %d queued, bits %x", len(ps.proposed), len(ps.proposals), ps.proposedBits)
	}
	if _, ok := a.pools[p.ID]; ok {
		t.Error("the idle pool is still kept")
	}
}

// TestPoolsFollowEtcd: against a real etcd, with another writer creating and deleting a pool's
// keys all along, a pool read at its first use and read again after resets of the watch (as
// after a compaction) always ends up exactly as etcd holds it once the allocator catches up;
// Counts gives the same count whether the pool was read (its bitmap) or not (etcd's count).
func TestPoolsFollowEtcd(t *testing.T) {
	t.Parallel()
	_, cli := etcdtest.Fresh(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const root = "/test/follow/"
	p := Pool{ID: "p", Ranges: []Range{rng("10.0.0.1", "10.0.0.100")}}
	key := func(i int) string { return KeyAt(root, p.ID, fmt.Sprintf("10.0.0.%d", i)) }
	for i := 1; i <= 100; i += 3 { // there before the allocator starts
		if _, err := cli.Put(ctx, key(i), "{}"); err != nil {
			t.Fatal(err)
		}
	}
	a := started(t, cli, root)
	if n, err := a.Counts(ctx, []string{p.ID, "none"}); err != nil || n[0] != 34 || n[1] != 0 {
		t.Fatalf("counts of a pool not read and of an empty one: %v, %v; want [34 0]", n, err)
	}

	stop := make(chan struct{})
	written := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(5, 6))
		for {
			select {
			case <-stop:
				written <- nil
				return
			default:
			}
			var err error
			if k := key(1 + rng.IntN(100)); rng.IntN(2) == 0 {
				_, err = cli.Put(ctx, k, "{}")
			} else {
				_, err = cli.Delete(ctx, k)
			}
			if err != nil {
				written <- err
				return
			}
		}
	}()
	for i := range 30 {
		if i%3 == 0 {
			a.reset(0)
		}
		propose(t, a, p, 1) // reads the pool when it is unread
	}
	close(stop)
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if err := a.cache.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, a.PoolPrefix(p.ID), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, kv := range resp.Kvs {
		_, addr, _ := a.parseKey(string(kv.Key))
		want = append(want, int(U32(addr)-U32(netip.MustParseAddr("10.0.0.1"))))
	}
	sort.Ints(want)
	a.mu.Lock()
	ps := a.pools[p.ID]
	var got []int
	if ps != nil && ps.state == current {
		got = usedOffsets(ps)
	}
	a.mu.Unlock()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("pool after the writes (-etcd +allocator):\n%s", diff)
	}
	if n, err := a.Counts(ctx, []string{p.ID}); err != nil || n[0] != len(want) {
		t.Fatalf("count of the pool read: %v, %v; want %d", n, err, len(want))
	}
}

// TestWaiterKeepsThePool: a call waiting for another's read of a pool keeps the pool: when
// that read fails and its caller drops what it no longer needs, the waiter reads the pool itself
// and its proposal is held in the pool the allocator knows (not in a dropped one that no other
// call sees).
func TestWaiterKeepsThePool(t *testing.T) {
	t.Parallel()
	_, cli := etcdtest.Fresh(t)
	a := started(t, cli, "/test/waiter/")
	p := Pool{ID: "p", Ranges: []Range{rng("10.0.0.1", "10.0.0.4")}}
	a.mu.Lock()
	ps := a.poolLocked(p.ID, p.Ranges)
	ps.state, ps.reading = reading, make(chan struct{}) // another call is reading it
	a.mu.Unlock()
	proposed := make(chan []netip.Addr, 1)
	go func() {
		addrs, err := a.Propose(t.Context(), p, 1)
		if err != nil {
			t.Error(err)
		}
		proposed <- addrs
	}()
	for waiting := false; !waiting; {
		a.mu.Lock()
		waiting = ps.waiters == 1
		a.mu.Unlock()
		runtime.Gosched()
	}
	a.mu.Lock() // the other read fails, as readLocked leaves it, and its caller drops what is idle
	close(ps.reading)
	ps.state = unread
	if a.dropIfIdle(ps) {
		t.Error("a pool was dropped while a call waited for its read")
	}
	a.mu.Unlock()
	got := <-proposed
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(got) != 1 || a.pools[p.ID] != ps || len(ps.proposed) != 1 {
		t.Fatalf("proposed %v; pool kept %v with %d proposals held, want one in the kept pool", got, a.pools[p.ID] == ps, len(ps.proposed))
	}
}

// TestCounts: counts of many pools, some read (their bitmap) and some not (etcd's count, in
// more than one transaction), each in its place.
func TestCounts(t *testing.T) {
	t.Parallel()
	_, cli := etcdtest.Fresh(t)
	ctx := t.Context()
	const root = "/test/counts/"
	a := started(t, cli, root)
	var ids []string
	var want []int
	for i := range 2*maxCounts + 10 {
		id := fmt.Sprintf("p%03d", i)
		ids = append(ids, id)
		want = append(want, i%7)
		for j := range i % 7 {
			if _, err := cli.Put(ctx, KeyAt(root, id, fmt.Sprintf("10.0.0.%d", j+1)), "{}"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < len(ids); i += 3 { // every third pool read
		propose(t, a, Pool{ID: ids[i], Ranges: []Range{rng("10.0.0.1", "10.0.0.20")}}, 1)
	}
	got, err := a.Counts(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// started is an allocator under root on cli, following etcd until the test ends.
func started(t *testing.T, cli *clientv3.Client, root string) *Allocator {
	t.Helper()
	a := New(cli, kvcache.NewRevisions(cli), root, etcdtest.Quiet)
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return a
}

// propose is Allocator.Propose, which must not fail.
func propose(t *testing.T, a *Allocator, p Pool, n int) []netip.Addr {
	t.Helper()
	addrs, err := a.Propose(t.Context(), p, n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}
