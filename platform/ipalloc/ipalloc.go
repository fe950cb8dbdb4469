// Package ipalloc hands out IPv4 addresses from pools kept in etcd, one key per address, race-free across replicas.
//
// Every allocated address is one key, created by a transaction that requires it to be absent,
// so etcd alone decides who gets an address and any number of replicas may allocate at once.
// A watch-fed bitmap per pool lets a replica pick a free candidate in constant time however full
// the pool is, and concurrent requests for one pool are committed together in one transaction.
package ipalloc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	mrand "math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/groupcommit"
	"github.com/openhavip/havip/platform/kvcache"
)

// Record is the value stored at an address's key.
type Record struct {
	// Owner names what uses the address (an ENI or HAVIP ID), if anything.
	Owner string `json:"owner,omitempty"`
	// Account is the tenant the address belongs to.
	Account string `json:"account,omitempty"`
	// Reservation is set while the allocation is an uncommitted reservation held by a lease.
	Reservation string `json:"reservation,omitempty"`
}

// Allocation is one allocated address.
type Allocation struct {
	Pool     string
	Addr     netip.Addr
	Record   Record
	Revision int64 // the key's ModRevision
}

// Pool describes where addresses come from. A pool's ranges never change for its ID.
type Pool struct {
	ID     string
	Ranges []Range
	// Guard must hold in every allocation transaction (for example: the subnet still exists).
	Guard []clientv3.Cmp
	// GuardErr is returned when Guard fails.
	GuardErr error
}

// Request asks for one address.
type Request struct {
	// Addr is the address wanted; the zero Addr means any free one.
	Addr    netip.Addr
	Owner   string
	Account string
	// TTL, when positive, makes the allocation a reservation that disappears after about TTL
	// (between TTL and TTL+1s) unless committed.
	TTL time.Duration
	// Value, when set, gives what is stored at the address's key in place of the Record: for a
	// caller whose whole record lives there (an EIP, say), so that one key is the address and
	// its record. It must decode as a Record with the same Owner and Account, since every
	// replica's view of the pool reads it as one.
	Value func(addr netip.Addr) string
}

const (
	maxBatch = 48 // allocations per transaction (etcd allows 128 operations per transaction)
)

// Allocator allocates addresses under root in etcd.
type Allocator struct {
	cli   *clientv3.Client
	root  string
	log   *slog.Logger
	cache *kvcache.Cache[struct{}] // the changes under root (WatchOnly): a pool is read when first used

	mu    sync.Mutex
	pools map[string]*pool
	epoch int // counts the cache's resets: a pool read across one is read again

	leases leases
}

// New returns an allocator keeping its keys under root (which must end in "/"); rev is shared
// with the caches it is synced together with.
func New(cli *clientv3.Client, rev *kvcache.Revisions, root string, log *slog.Logger) *Allocator {
	a := &Allocator{cli: cli, root: root, log: log, pools: map[string]*pool{}}
	a.leases.cli = cli
	a.cache = kvcache.New(cli, rev, root, func(string, []byte) (struct{}, error) { return struct{}{}, nil }, log, a.observe).WatchOnly(a.reset)
	return a
}

// Start follows the allocations until ctx ends. It reads none: each pool is read when it is
// first allocated from (or proposed from), so a replica starts in the same time however many
// addresses etcd holds, and holds only the pools it uses.
func (a *Allocator) Start(ctx context.Context) error { return a.cache.Start(ctx) }

// Key is the etcd key of an address in a pool.
func (a *Allocator) Key(poolID string, addr netip.Addr) string {
	return KeyAt(a.root, poolID, addr.String())
}

// KeyAt is Key for a service that has no Allocator of its own: root is the allocator's key
// prefix.
func KeyAt(root, poolID, ip string) string { return root + poolID + "/" + ip }

// PoolPrefix is the etcd key prefix of all of a pool's addresses.
func (a *Allocator) PoolPrefix(poolID string) string { return a.root + poolID + "/" }

func (a *Allocator) parseKey(key string) (poolID string, addr netip.Addr, ok bool) {
	rest, ok := strings.CutPrefix(key, a.root)
	if !ok {
		return "", netip.Addr{}, false
	}
	poolID, ip, ok := strings.Cut(rest, "/")
	if !ok {
		return "", netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(ip)
	return poolID, addr, err == nil && addr.Is4()
}

// pool is a replica's view of one pool: the addresses etcd holds (read when the pool is first
// used, then followed through the watch) plus the candidates this replica is trying right now.
type pool struct {
	id     string
	layout layout
	size   int
	bits   []uint64 // used, by offset; bits past size are set
	n      int      // offsets used (set in bits, below size)

	state poolState
	// read is the revision the pool was read at: the watch's changes up to it are in bits.
	read int64
	// reading is closed when the read under way ends; waiters wait for it (the pool is kept
	// for them).
	reading chan struct{}
	waiters int
	// missed are the changes the watch brought while the pool was being read, in order.
	missed []change

	// hold marks offsets not to hand out: math.MaxInt64 while a transaction of ours is trying
	// them, or the revision up to which the cache is known to be behind for them.
	hold map[int]int64
	// proposed marks offsets proposed to callers that create the keys themselves (Propose),
	// until when: a soft hold, given up when nothing else is free. proposedBits has the bit of
	// each (set and cleared by propose and unpropose), so that the search for a free offset
	// skips them a word at a time.
	proposed     map[int]time.Time
	proposedBits []uint64
	// proposals are the holds of proposed in the order they end (each lasts ProposalHold), so
	// that they expire from the front; sweep expires them once no call comes to do it.
	proposals []proposal
	sweep     *time.Timer

	queue groupcommit.Queue[*call]
}

// poolState is how far a pool's bits are known.
type poolState int8

const (
	unread  poolState = iota // not read yet, or stale after a reset of the watch
	reading                  // a read is under way
	current                  // read, and followed by the watch since
)

// change is one change of an offset the watch brought.
type change struct {
	off  int
	used bool
	rev  int64
}

// proposal is one hold Propose made.
type proposal struct {
	off   int
	until time.Time
}

type call struct {
	ctx      context.Context
	req      Request
	p        Pool
	specific bool // req.Addr was asked for
	off      int
	done     chan struct{}
	res      Allocation
	err      error
}

// observe keeps the pools in step with the watch (a kvcache hook): a pool read is changed, a
// pool being read keeps the change for when its read is in, and any other is left alone.
func (a *Allocator) observe(prev, cur *kvcache.Item[struct{}], rev int64) {
	it := cur
	if it == nil {
		it = prev
	}
	id, addr, ok := a.parseKey(it.Key)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pools[id]
	if p == nil || p.state == unread {
		return
	}
	off := p.layout.offset(addr)
	if off < 0 {
		return
	}
	ch := change{off: off, used: cur != nil, rev: rev}
	if p.state == reading {
		p.missed = append(p.missed, ch)
		return
	}
	if rev > p.read {
		p.apply(ch)
	}
	a.dropIfIdle(p)
}

// apply makes one change of the watch to a pool read.
func (p *pool) apply(ch change) {
	p.mark(ch.off, ch.used)
	if r, held := p.hold[ch.off]; held && r != math.MaxInt64 && r <= ch.rev {
		delete(p.hold, ch.off)
	}
	if ch.used {
		p.unpropose(ch.off) // taken: by the proposal's caller, most likely
	}
}

// mark sets or clears the bit of off.
func (p *pool) mark(off int, used bool) {
	w, bit := off/64, uint64(1)<<(off%64)
	switch was := p.bits[w]&bit != 0; {
	case used && !was:
		p.bits[w] |= bit
		p.n++
	case !used && was:
		p.bits[w] &^= bit
		p.n--
	}
}

// reset is told by the cache that the watch lost changes: every pool read is stale, to be read
// again at its next use (a read under way sees the epoch change and starts again).
func (a *Allocator) reset(rev int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.epoch++
	a.log.Info("allocations' watch lost changes; pools are read again at their next use", "root", a.root, "revision", rev)
	for _, p := range a.pools {
		if p.state == current {
			p.state = unread
		}
		p.dropCaughtUp(rev) // the pool's next read is at rev or later
		a.dropIfIdle(p)
	}
}

// idle reports whether a pool holds nothing worth keeping: no address read, no read, no call,
// no hold.
func (p *pool) idle() bool {
	return (p.n == 0 || p.state == unread) && p.state != reading && p.waiters == 0 && len(p.queue.Pending()) == 0 && p.queue.Running() == 0 && len(p.hold) == 0 && len(p.proposed) == 0
}

// dropIfIdle drops p when it holds nothing worth keeping (it is read again at its next use),
// and reports whether it did. a.mu is held.
func (a *Allocator) dropIfIdle(p *pool) bool {
	if !p.idle() || a.pools[p.id] != p {
		return false
	}
	delete(a.pools, p.id)
	return true
}

// expire drops the proposals whose hold ended by now.
func (p *pool) expire(now time.Time) {
	n := 0
	for ; n < len(p.proposals) && !p.proposals[n].until.After(now); n++ {
		if until, ok := p.proposed[p.proposals[n].off]; ok && !until.After(now) {
			p.unpropose(p.proposals[n].off)
		}
	}
	// Resliced, not shifted: under load the queue holds every proposal of the last
	// ProposalHold, and moving them down on each call cost a copy of all of them.
	if p.proposals = p.proposals[n:]; len(p.proposals) == 0 {
		p.proposals = nil
	}
}

// sweepLater makes sure a pool's proposals expire, and the pool goes when it is then idle,
// even if no call comes to the pool again (its subnet deleted, say). a.mu is held.
func (a *Allocator) sweepLater(p *pool) {
	if p.sweep != nil || len(p.proposals) == 0 {
		return
	}
	p.sweep = time.AfterFunc(time.Until(p.proposals[0].until), func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		p.sweep = nil
		a.sweepLocked(p, time.Now())
	})
}

// sweepLocked expires a pool's proposals as of now, and drops the pool when it is then idle
// (or has them swept later). a.mu is held.
func (a *Allocator) sweepLocked(p *pool, now time.Time) {
	p.expire(now)
	if !a.dropIfIdle(p) {
		a.sweepLater(p)
	}
}

// poolLocked returns the pool of id, shaped by ranges the first time it is used (a pool's ranges
// never change for its ID). a.mu is held.
func (a *Allocator) poolLocked(id string, ranges []Range) *pool {
	p := a.pools[id]
	if p == nil {
		p = newPool(id, ranges)
		a.pools[id] = p
	}
	return p
}

// newPool is a pool of ranges, unread.
func newPool(id string, ranges []Range) *pool {
	p := &pool{id: id, hold: map[int]int64{}, proposed: map[int]time.Time{}, layout: layout(ranges)}
	p.size = p.layout.size()
	p.bits = make([]uint64, (p.size+63)/64)
	p.proposedBits = make([]uint64, len(p.bits))
	p.clear()
	return p
}

// propose holds off back as proposed until until.
func (p *pool) propose(off int, until time.Time) {
	p.proposed[off] = until
	p.proposedBits[off/64] |= 1 << (off % 64)
}

// unpropose drops the proposal of off, if there is one.
func (p *pool) unpropose(off int) {
	delete(p.proposed, off)
	p.proposedBits[off/64] &^= 1 << (off % 64)
}

// clear marks every offset free (and the bits past size used).
func (p *pool) clear() {
	clear(p.bits)
	for off := p.size; off < len(p.bits)*64; off++ {
		p.bits[off/64] |= 1 << (off % 64)
	}
	p.n = 0
}

// readLocked makes sure p is read: it reads the pool's keys from etcd unless p is current or
// another call is reading it (then it waits for that read). a.mu is held, and is released while
// etcd is read. The changes the watch brings meanwhile are kept (observe) and applied past the
// read's revision, so that p then stands as of that revision, followed by the watch from there.
func (a *Allocator) readLocked(ctx context.Context, p *pool) error {
	for p.state != current {
		if p.state == reading {
			done := p.reading
			p.waiters++
			a.mu.Unlock()
			select {
			case <-done:
			case <-ctx.Done():
			}
			a.mu.Lock()
			p.waiters--
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
		}
		p.state, p.reading, p.missed = reading, make(chan struct{}), nil
		epoch := a.epoch
		a.mu.Unlock()
		used, rev, err := a.readPool(ctx, p.id)
		a.mu.Lock()
		close(p.reading)
		missed := p.missed
		p.state, p.missed = unread, nil
		if err != nil {
			return fmt.Errorf("read the allocations of %s: %w", p.id, apierr.StoreErr(ctx, err))
		}
		if a.epoch != epoch {
			continue // the watch lost changes while the read went on: they may be missing from both
		}
		p.fill(used, rev, missed)
	}
	return nil
}

// fill makes p current as of a read at rev that found used, then the changes the watch brought
// meanwhile (missed): those up to rev are in the read already.
func (p *pool) fill(used []netip.Addr, rev int64, missed []change) {
	p.clear()
	for _, addr := range used {
		if off := p.layout.offset(addr); off >= 0 {
			p.mark(off, true)
		}
	}
	for _, ch := range missed {
		if ch.rev > rev {
			p.apply(ch)
		}
	}
	p.dropCaughtUp(rev)
	p.state, p.read = current, rev
}

// dropCaughtUp drops the holds of revisions up to rev: the bits are read at rev or later.
func (p *pool) dropCaughtUp(rev int64) {
	for off, r := range p.hold {
		if r != math.MaxInt64 && r <= rev {
			delete(p.hold, off)
		}
	}
}

// readPool reads which addresses of a pool have a key, at one revision (kvcache.ReadKeys).
func (a *Allocator) readPool(ctx context.Context, id string) ([]netip.Addr, int64, error) {
	keys, rev, err := kvcache.ReadKeys(ctx, a.cli, a.PoolPrefix(id))
	if err != nil {
		return nil, 0, err
	}
	used := make([]netip.Addr, 0, len(keys))
	for _, k := range keys {
		if _, addr, ok := a.parseKey(k); ok {
			used = append(used, addr)
		}
	}
	return used, rev, nil
}

// candidate returns a free offset not held, starting the search at a random word so that
// replicas rarely pick the same one; -1 when there is none. A proposed offset is returned only
// when no other free one is left: first one whose proposal ended by now, else one still held.
func (p *pool) candidate(applied int64, now time.Time) int {
	n := len(p.bits)
	if n == 0 {
		return -1 // a pool without addresses (rand.IntN(0) would panic)
	}
	start := mrand.IntN(n)
	// pick returns the first offset of the words' free bits (free gives them) that no
	// transaction holds, or -1; ok (when set) decides on each such offset first.
	pick := func(free func(w int) uint64, ok func(off int) bool) int {
		for i := 0; i < n; i++ {
			w := (start + i) % n
			for f := free(w); f != 0; f &= f - 1 {
				off := w*64 + bits.TrailingZeros64(f)
				if r, held := p.hold[off]; held {
					if r > applied {
						continue
					}
					delete(p.hold, off)
				}
				if ok == nil || ok(off) {
					return off
				}
			}
		}
		return -1
	}
	if off := pick(func(w int) uint64 { return ^(p.bits[w] | p.proposedBits[w]) }, nil); off >= 0 {
		return off
	}
	fallback := -1
	proposedFree := func(w int) uint64 { return ^p.bits[w] & p.proposedBits[w] }
	off := pick(proposedFree, func(off int) bool {
		if p.proposed[off].After(now) {
			if fallback < 0 {
				fallback = off
			}
			return false
		}
		p.unpropose(off)
		return true
	})
	if off >= 0 {
		return off
	}
	return fallback
}

// Allocate takes one address from pool p as req asks.
// Errors: p.GuardErr; InvalidParameterValue.Range for an address outside the pool;
// InvalidParameterValue.Duplicate for a taken address; ResourceInsufficient when full.
func (a *Allocator) Allocate(ctx context.Context, p Pool, req Request) (Allocation, error) {
	c := &call{ctx: ctx, req: req, p: p, specific: req.Addr.IsValid(), off: -1, done: make(chan struct{})}
	a.mu.Lock()
	ps := a.poolLocked(p.ID, p.Ranges)
	if c.specific {
		if c.off = ps.layout.offset(req.Addr); c.off < 0 {
			a.mu.Unlock()
			return Allocation{}, apierr.New(apierr.ReasonRange, "%s is outside the usable range of %s", req.Addr, p.ID)
		}
	}
	if ps.queue.Add(c) {
		go a.run(ps)
	}
	a.mu.Unlock()
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return Allocation{}, ctx.Err()
	}
}

// ProposalHold is how long Propose holds a proposed address back from this replica's other
// proposals and allocations.
const ProposalHold = 10 * time.Second

// maxProposed bounds the proposals a pool holds at once: past it, new proposals are made
// without a hold. Holds expire after ProposalHold, and an idle pool is dropped, so what a caller
// proposing in a loop makes a replica keep is bounded by this per pool of a subnet that exists.
const maxProposed = 4096

// Propose picks up to n free addresses of pool p without allocating them, for a caller that
// creates their keys itself, with p.Guard, in a transaction of its own (CommitOpsAt of an
// Allocation whose Revision is 0 requires the key to be absent). Each is held back from
// this replica's other proposals and allocations for ProposalHold, or until its key appears,
// unless nothing else is free (an address proposed again then keeps what is left of its
// hold). Another replica does not know of the hold: the caller's transaction decides between
// them. The first use of a pool reads it from etcd, and fails only when that read does.
func (a *Allocator) Propose(ctx context.Context, p Pool, n int) ([]netip.Addr, error) {
	applied := a.cache.Revision()
	a.mu.Lock()
	defer a.mu.Unlock()
	ps := a.poolLocked(p.ID, p.Ranges)
	if err := a.readLocked(ctx, ps); err != nil {
		a.dropIfIdle(ps)
		return nil, err
	}
	now := time.Now()
	ps.expire(now)
	defer a.sweepLater(ps)
	var out []netip.Addr
	seen := map[int]bool{}
	for try := 0; len(out) < n && try < 2*n; try++ {
		off := ps.candidate(applied, now)
		if off < 0 {
			break
		}
		if seen[off] {
			continue // proposed by this call without a hold (the bound is reached): look again
		}
		if _, again := ps.proposed[off]; again && len(out) > 0 {
			break // only held addresses are left, and one was proposed in this call already
		}
		seen[off] = true
		// An address proposed again (only held ones are left) keeps its hold as it is: a new
		// hold would queue one more expiry per call for a caller proposing in a loop.
		if _, held := ps.proposed[off]; !held && len(ps.proposed) < maxProposed {
			ps.propose(off, now.Add(ProposalHold))
			ps.proposals = append(ps.proposals, proposal{off: off, until: now.Add(ProposalHold)})
		}
		out = append(out, ps.layout.addr(off))
	}
	return out, nil
}

// run commits batches of the pool's pending calls until none is left.
func (a *Allocator) run(ps *pool) {
	synced := false
	for {
		// Read before locking: the cache calls observe (which locks a.mu) under its own lock.
		applied := a.cache.Revision()
		a.mu.Lock()
		if err := a.readRunLocked(ps); err != nil {
			for _, c := range ps.queue.Pending() {
				c.finish(Allocation{}, err)
			}
			ps.queue.SetPending(nil)
			ps.queue.Exit()
			a.dropIfIdle(ps)
			a.mu.Unlock()
			return
		}
		batch := a.takeLocked(ps, applied)
		if len(batch) == 0 {
			if len(ps.queue.Pending()) == 0 || ps.queue.Running() > 1 || synced {
				// Nothing to do, or another runner will retry after its batch, or the cache is
				// fresh and there is still no free address: the pool is full.
				if len(ps.queue.Pending()) > 0 && ps.queue.Running() == 1 {
					for _, c := range ps.queue.Pending() {
						c.finish(Allocation{}, apierr.New(apierr.ReasonResourceInsufficient, "no free address left in %s", ps.id))
					}
					ps.queue.SetPending(nil)
				}
				ps.queue.Exit()
				a.dropIfIdle(ps) // every call failed (its subnet gone, say): nothing to keep
				a.mu.Unlock()
				return
			}
			a.mu.Unlock()
			// The cache may be behind: catch up with etcd, then look again.
			if err := a.cache.Sync(context.Background()); err != nil {
				a.failPending(ps, fmt.Errorf("sync allocations: %w", err))
			}
			synced = true
			continue
		}
		a.mu.Unlock()
		synced = false
		a.commit(ps, batch)
	}
}

// readRunLocked reads a pool for its runner (readLocked), bounded as a transaction is.
func (a *Allocator) readRunLocked(ps *pool) error {
	if ps.state == current {
		return nil
	}
	ctx, cancel := apierr.StoreTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a.readLocked(ctx, ps)
}

func (a *Allocator) failPending(ps *pool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range ps.queue.Pending() {
		c.finish(Allocation{}, err)
	}
	ps.queue.SetPending(nil)
}

// takeLocked picks up to maxBatch pending calls that can be tried now and holds their offsets.
// applied is the cache's revision, read before a.mu was taken.
func (a *Allocator) takeLocked(ps *pool, applied int64) []*call {
	var batch, keep []*call
	now := time.Now()
	pending := ps.queue.Pending()
	for i, c := range pending {
		if len(batch) == maxBatch {
			keep = append(keep, pending[i:]...)
			break
		}
		if c.ctx.Err() != nil {
			c.finish(Allocation{}, c.ctx.Err())
			continue
		}
		if c.specific {
			if r, held := ps.hold[c.off]; held && r == math.MaxInt64 {
				keep = append(keep, c) // another call of ours is trying it; let etcd judge after
				continue
			}
		} else if c.off = ps.candidate(applied, now); c.off < 0 {
			keep = append(keep, c)
			continue
		}
		ps.hold[c.off] = math.MaxInt64
		batch = append(batch, c)
	}
	ps.queue.SetPending(keep)
	return batch
}

// commit tries a batch in one transaction: all its addresses are created, or none is.
func (a *Allocator) commit(ps *pool, batch []*call) {
	var lease clientv3.LeaseID
	cmps := make([]clientv3.Cmp, 0, len(batch[0].p.Guard)+len(batch))
	puts := make([]clientv3.Op, 0, len(batch))
	cmps = append(cmps, batch[0].p.Guard...)
	ctx, cancel := apierr.StoreTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range batch {
		addr := ps.layout.addr(c.off)
		key := a.Key(ps.id, addr)
		c.res = Allocation{Pool: ps.id, Addr: addr, Record: Record{Owner: c.req.Owner, Account: c.req.Account}}
		var opts []clientv3.OpOption
		if c.req.TTL > 0 {
			if lease == 0 {
				l, err := a.leases.get(ctx, c.req.TTL)
				if err != nil {
					a.retry(ps, batch, nil, 0, fmt.Errorf("reservation lease: %w", apierr.StoreErr(ctx, err)))
					return
				}
				lease = l
			}
			c.res.Record.Reservation = newToken()
			opts = append(opts, clientv3.WithLease(lease))
		}
		var val string
		if c.req.Value != nil {
			val = c.req.Value(addr)
		} else {
			b, _ := json.Marshal(c.res.Record)
			val = string(b)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.Version(key), "=", 0))
		puts = append(puts, clientv3.OpPut(key, val, opts...))
	}
	resp, err := a.cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
	if err != nil {
		a.retry(ps, batch, nil, 0, fmt.Errorf("allocation transaction: %w", apierr.StoreErr(ctx, err)))
		return
	}
	rev := resp.Header.Revision
	if resp.Succeeded {
		a.mu.Lock()
		for _, c := range batch {
			ps.hold[c.off] = rev // used from rev on, whatever the cache says until it gets there
			c.res.Revision = rev
			c.finish(c.res, nil)
		}
		a.mu.Unlock()
		return
	}
	// Lost a race (rare): read whether the guard still holds and which addresses are taken.
	gets := make([]clientv3.Op, len(batch))
	for i, c := range batch {
		gets[i] = clientv3.OpGet(a.Key(ps.id, ps.layout.addr(c.off)), clientv3.WithKeysOnly())
	}
	resp, err = a.cli.Txn(ctx).If(batch[0].p.Guard...).Then(gets...).Commit()
	if err != nil {
		a.retry(ps, batch, nil, 0, fmt.Errorf("read lost addresses: %w", apierr.StoreErr(ctx, err)))
		return
	}
	if !resp.Succeeded {
		a.retry(ps, batch, nil, 0, batch[0].p.GuardErr)
		return
	}
	taken := make([]bool, len(batch))
	for i, r := range resp.Responses {
		taken[i] = len(r.GetResponseRange().Kvs) > 0
	}
	// Untaken calls go round again (an address taken then freed in between included).
	a.retry(ps, batch, taken, resp.Header.Revision, nil)
}

// retry ends a failed batch: calls fail with err if it is set; otherwise taken specific
// addresses fail as duplicates and everything else goes back to pending.
func (a *Allocator) retry(ps *pool, batch []*call, taken []bool, rev int64, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, c := range batch {
		delete(ps.hold, c.off)
		switch {
		case err != nil:
			c.finish(Allocation{}, err)
		case taken[i] && c.specific:
			c.finish(Allocation{}, apierr.New(apierr.ReasonOccupied, "%s is already in use", c.req.Addr))
		default:
			if taken[i] {
				ps.hold[c.off] = rev // the cache will learn of it by rev
			}
			ps.queue.SetPending(append(ps.queue.Pending(), c))
		}
	}
}

func (c *call) finish(res Allocation, err error) {
	c.res, c.err = res, err
	close(c.done)
}

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
