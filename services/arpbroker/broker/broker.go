package broker

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unique"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/ownercache"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/retry"
	"github.com/openhavip/havip/platform/txnbatch"
)

// Result is what the broker did with a claim.
type Result int

// The outcomes of a claim.
const (
	Accepted Result = iota + 1
	Refreshed
	Rejected
	Deferred
)

// Outcome is the answer to one report.
type Outcome struct {
	Result   Result
	Reject   *RuleError
	HaVipID  string
	Revision int64 // the ownership's fencing revision after the call
}

// ErrNotLeader is returned by Claim on a replica that is not the elected one.
var ErrNotLeader = errors.New("this broker replica is not the leader")

// Defaults of Config.
const (
	DefaultHoldDown    = 3 * time.Second
	DefaultElectionTTL = 5 // seconds
)

// Config tunes a broker.
type Config struct {
	// HoldDown is the least time between two owner changes of one HAVIP (flap damping);
	// zero means DefaultHoldDown.
	HoldDown time.Duration
	// Addr is this replica's gRPC address, published as the election value.
	Addr string
	// ElectionTTL is the leader session's TTL in seconds; zero means DefaultElectionTTL.
	ElectionTTL int
}

// Broker keeps the inventory it judges claims against and the ownerships, and, while elected,
// writes owner changes.
type Broker struct {
	cli   *clientv3.Client
	batch *txnbatch.Batcher // owner changes of different HAVIPs commit together
	log   *slog.Logger
	cfg   Config

	group     *kvcache.Group
	enis      *kvcache.Cache[records.NetworkInterface]
	instances *kvcache.Cache[records.Instance]
	havips    *havipcache.Cache
	owners    *ownercache.Cache
	sessions  *kvcache.Cache[Session]

	mu      sync.Mutex
	byVIP   map[vipRef]string                      // VIP in its VPC → HAVIP ID (under havips' cache lock)
	pending map[string]*pendingClaim               // HAVIP ID → the latest claim waiting out the hold-down
	written map[string]kvcache.Item[records.Owner] // owners this replica wrote that the cache may not have yet
	ownedBy map[string]map[string]struct{}         // ENI ID → the HAVIPs it owns (under owners' cache lock)
	recheck map[string]struct{}                    // HAVIPs whose owner must be judged again
	wake    chan struct{}                          // a HAVIP was added to recheck

	rejected      map[string]time.Time // HAVIP/ENI/reason → when last recorded
	recordBudget  map[string]*budget   // reporting identity → its budget of rejection records
	rejectLease   clientv3.LeaseID     // the lease the rejections of the current minute share
	rejectLeaseAt time.Time
	subs          map[chan []OwnerChange]struct{}
	leader        *leadership // nil while not elected
}

type pendingClaim struct {
	report Report
	timer  *time.Timer
}

type leadership struct {
	key string
	rev int64
}

// OwnerChange is one owner as it became at a revision; Owner is nil when the HAVIP has none.
type OwnerChange struct {
	HaVipID  string
	Owner    *records.Owner
	Revision int64
}

// New returns a broker on cli that reads the HAVIPs from havips and keeps their owners in owners
// (both of which it may share with other services of the process). Call Start before use.
func New(cli *clientv3.Client, havips *havipcache.Cache, owners *ownercache.Cache, log *slog.Logger, cfg Config) *Broker {
	if cfg.HoldDown <= 0 {
		cfg.HoldDown = DefaultHoldDown
	}
	if cfg.ElectionTTL <= 0 {
		cfg.ElectionTTL = DefaultElectionTTL
	}
	g := kvcache.NewGroup(cli)
	rev := g.Revisions()
	b := &Broker{
		cli: cli, batch: txnbatch.New(cli), log: log, cfg: cfg, group: g, havips: havips, byVIP: map[vipRef]string{}, pending: map[string]*pendingClaim{},
		written: map[string]kvcache.Item[records.Owner]{}, ownedBy: map[string]map[string]struct{}{},
		recheck: map[string]struct{}{}, wake: make(chan struct{}, 1),
		rejected: map[string]time.Time{}, recordBudget: map[string]*budget{}, subs: map[chan []OwnerChange]struct{}{},
	}
	b.enis = kvcache.New(cli, rev, records.NetworkInterfaces, kvcache.DecodeJSON[records.NetworkInterface], log, b.eniChanged)
	b.instances = kvcache.New(cli, rev, records.Instances, kvcache.DecodeJSON[records.Instance], log)
	havips.AddHook(b.indexVIP, b.loadVIPs)
	b.owners = owners
	owners.AddHook(b.publish, nil)
	b.sessions = kvcache.New(cli, rev, records.Sessions, kvcache.DecodeJSON[Session], log)
	g.Add(b.enis, b.instances, b.havips, b.owners, b.sessions)
	return b
}

func sessionKey(id int64) string { return records.Sessions + strconv.FormatInt(id, 16) }

// markLocked queues a HAVIP's owner to be judged again (under b.mu), on the leader only: a
// replica that takes the lead judges every owner then (so a cold load queues nothing).
func (b *Broker) markLocked(havipID string) {
	if b.leader == nil {
		return
	}
	b.recheck[havipID] = struct{}{}
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// eniChanged queues the HAVIPs an ENI owns when the ENI changes: detached, attached elsewhere,
// deleted (a kvcache hook).
func (b *Broker) eniChanged(prev, cur *kvcache.Item[records.NetworkInterface], _ int64) {
	it := cur
	if it == nil {
		it = prev
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for h := range b.ownedBy[it.Value.ID] {
		b.markLocked(h)
	}
	for h, w := range b.written { // owners of ours whose watch event has not come yet
		if w.Value.NetworkInterfaceID == it.Value.ID {
			b.markLocked(h)
		}
	}
}

func (b *Broker) indexVIP(prev, cur *havipcache.Item, _ int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev != nil {
		// Only if it still names prev: a reload tells of creates before deletes, so another
		// HAVIP may already hold this VIP.
		if ref := refOf(&prev.Value); b.byVIP[ref] == havipcache.IDOf(prev.Key) {
			delete(b.byVIP, ref)
		}
	}
	if cur != nil {
		b.addVIPLocked(cur) // its range or check_associate may have changed
	}
}

// addVIPLocked indexes it by VIP, and marks it for a recheck. b.mu is held.
func (b *Broker) addVIPLocked(it *havipcache.Item) {
	id := havipcache.IDOf(it.Key) // shares the key's bytes
	b.byVIP[refOf(&it.Value)] = id
	b.markLocked(id)
}

// loadVIPs indexes the HAVIPs of a first load by VIP (indexVIP's loader).
func (b *Broker) loadVIPs(items []*havipcache.Item) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byVIP = make(map[vipRef]string, len(items)) // a loader comes first: nothing is indexed yet
	for _, it := range items {
		b.addVIPLocked(it)
	}
}

// publish tells watchers of every owner change (a kvcache hook).
func (b *Broker) publish(prev, cur *kvcache.Item[records.Owner], rev int64) {
	it := cur
	if it == nil {
		it = prev
	}
	ch := OwnerChange{HaVipID: strings.TrimPrefix(it.Key, records.Owners), Revision: rev}
	if cur != nil {
		o := cur.Value
		ch.Owner = &o
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev != nil {
		if set := b.ownedBy[prev.Value.NetworkInterfaceID]; set != nil {
			delete(set, ch.HaVipID)
			if len(set) == 0 {
				delete(b.ownedBy, prev.Value.NetworkInterfaceID)
			}
		}
	}
	if cur != nil {
		set := b.ownedBy[cur.Value.NetworkInterfaceID]
		if set == nil {
			set = map[string]struct{}{}
			b.ownedBy[cur.Value.NetworkInterfaceID] = set
		}
		set[ch.HaVipID] = struct{}{}
		// Another replica's write (or one from before this replica led) was judged on caches
		// this one may not share: judge it again. Our own writes were fenced on the HAVIP and
		// the ENI as judged, and a change of the ENI since queues them (eniChanged).
		if w, ok := b.written[ch.HaVipID]; !ok || w.ModRevision != rev {
			b.markLocked(ch.HaVipID)
		}
	}
	if w, ok := b.written[ch.HaVipID]; ok && w.ModRevision <= rev {
		delete(b.written, ch.HaVipID) // the cache has caught up with our own write
	}
	for sub := range b.subs {
		select {
		case sub <- []OwnerChange{ch}:
		default:
			// A watcher that does not keep up is cut off; it reconnects and gets a snapshot.
			close(sub)
			delete(b.subs, sub)
		}
	}
}

// Start loads the state, follows it, and campaigns for leadership until ctx ends.
func (b *Broker) Start(ctx context.Context) error {
	if err := b.group.Start(ctx); err != nil {
		return err
	}
	liveBrokers.Store(b, struct{}{})
	context.AfterFunc(ctx, func() { liveBrokers.Delete(b) })
	go b.campaign(ctx)
	go b.rechecker(ctx)
	context.AfterFunc(ctx, b.stopPending)
	return nil
}

// stopPending drops the claims waiting out a hold-down, when the broker stops.
func (b *Broker) stopPending() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, p := range b.pending {
		p.timer.Stop()
		delete(b.pending, id)
	}
}

// campaign keeps trying to lead; while leading, leadership holds the election key's revision
// that every write compares, so a deposed leader cannot write.
func (b *Broker) campaign(ctx context.Context) {
	for ctx.Err() == nil {
		sess, err := concurrency.NewSession(b.cli, concurrency.WithTTL(b.cfg.ElectionTTL), concurrency.WithContext(ctx))
		if err != nil {
			b.log.Warn("election session", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		e := concurrency.NewElection(sess, records.BrokerElection)
		if err := e.Campaign(ctx, b.cfg.Addr); err != nil {
			_ = sess.Close()
			continue
		}
		b.mu.Lock()
		b.leader = &leadership{key: e.Key(), rev: e.Rev()}
		for _, owned := range b.ownedBy {
			for h := range owned {
				b.markLocked(h) // a new leader judges every owner again
			}
		}
		b.mu.Unlock()
		leaderChanges.Add(ctx, 1, leaderAcquired...)
		b.log.Info("leading the broker replicas", "addr", b.cfg.Addr)
		select {
		case <-ctx.Done():
		case <-sess.Done():
			b.log.Warn("lost leadership")
		}
		b.mu.Lock()
		b.leader = nil
		b.mu.Unlock()
		leaderChanges.Add(context.WithoutCancel(ctx), 1, leaderLost...)
		_ = e.Resign(context.WithoutCancel(ctx))
		_ = sess.Close()
	}
}

// Leader returns the gRPC address of the elected replica.
func (b *Broker) Leader(ctx context.Context) (string, error) {
	resp, err := b.cli.Get(ctx, records.BrokerElection+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1))
	if err != nil {
		return "", fmt.Errorf("read leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", errors.New("no broker leader elected")
	}
	return string(resp.Kvs[0].Value), nil
}

// IsLeader reports whether this replica decides claims now.
func (b *Broker) IsLeader() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.leader != nil
}

// lookups for the rules, from the caches.
type view struct{ b *Broker }

func (v view) eni(id string) (records.NetworkInterface, bool) {
	it, ok := v.b.enis.Get(records.NetworkInterfaceKey(id))
	return it.Value, ok
}

func (v view) havipByVIP(vpc string, vip netip.Addr) (records.HaVip, bool) {
	v.b.mu.Lock()
	id, ok := v.b.byVIP[vipRef{unique.Make(vpc), vip}]
	v.b.mu.Unlock()
	if !ok {
		return records.HaVip{}, false
	}
	it, ok := v.b.havips.Get(records.HaVipKey(id))
	if !ok {
		return records.HaVip{}, false
	}
	return record(&it), true
}

// Claim judges a report and, on the leader, applies it. Claims that race (keepalived sends a
// burst of five) are judged again after the winner's write: the others then find their ENI
// already the owner.
func (b *Broker) Claim(ctx context.Context, r Report) (Outcome, error) {
	var out Outcome
	err := retry.OnConflict(ctx, "the ownership of "+r.SenderIP, func(ctx context.Context) (bool, error) {
		var err error
		out, err = b.claim(ctx, r)
		if !errors.Is(err, errConflict) {
			return true, err
		}
		return false, b.group.Sync(ctx)
	})
	countClaim(ctx, out, err)
	return out, err
}

func (b *Broker) claim(ctx context.Context, r Report) (Outcome, error) {
	if !b.IsLeader() {
		return Outcome{}, ErrNotLeader
	}
	sess, err := b.checkSession(ctx, r)
	if err != nil {
		if apierr.Reason(err) != "" { // refused, not failed
			h, _ := b.resolve(r)
			b.recordRejection(ctx, h, r, reject(ReasonNoSession, "%v", err))
		}
		return Outcome{}, err
	}
	h, e, rej := check(view{b}, r)
	if rej != nil && (rej.Reason == ReasonUnknownENI || rej.Reason == ReasonUnknownVIP) {
		// Created a moment ago, perhaps, through another replica: judge again once the caches
		// are as fresh as etcd.
		if err := b.group.Sync(ctx); err != nil {
			return Outcome{}, err
		}
		h, e, rej = check(view{b}, r)
	}
	if rej == nil {
		// An agent speaks only for the ENIs of its own host (judged again on fresh caches: the
		// CVM may have been created a moment ago through another replica).
		host := b.hostOf(e.InstanceID)
		if host != sess.HostID {
			if err := b.group.Sync(ctx); err != nil {
				return Outcome{}, err
			}
			host = b.hostOf(e.InstanceID)
		}
		if host != sess.HostID {
			rej = reject(ReasonWrongHost, "%s is on host %q; the agent's session is for host %q", e.ID, host, sess.HostID)
		}
	}
	if rej != nil {
		if h.ID == "" {
			h, _ = b.resolve(r)
		}
		b.recordRejection(ctx, h, r, rej)
		return Outcome{Result: Rejected, Reject: rej, HaVipID: h.ID, Revision: b.ownerRevision(h.ID)}, nil
	}
	cur, hasOwner := b.currentOwner(h.ID)
	if hasOwner && cur.Value.NetworkInterfaceID == e.ID && cur.Value.Session == r.Session {
		b.cancelPending(h.ID) // the owner announces again: a waiting claim of another lost
		return Outcome{Result: Refreshed, HaVipID: h.ID, Revision: cur.ModRevision}, nil
	}
	if hasOwner && cur.Value.NetworkInterfaceID != e.ID {
		if wait := time.Until(cur.Value.Changed.Add(b.cfg.HoldDown)); wait > 0 {
			b.deferClaim(h.ID, r, wait)
			return Outcome{Result: Deferred, HaVipID: h.ID, Revision: cur.ModRevision}, nil
		}
	}
	rev, err := b.write(ctx, h, e, r, cur, hasOwner)
	if err != nil {
		if apierr.Reason(err) == apierr.ReasonResourceNotFound { // the session ended meanwhile
			b.recordRejection(ctx, h, r, reject(ReasonNoSession, "%v", err))
		}
		return Outcome{}, err
	}
	b.cancelPending(h.ID)
	recordOwnerChange(ctx, r)
	return Outcome{Result: Accepted, HaVipID: h.ID, Revision: rev}, nil
}

// currentOwner is the newest owner record of a HAVIP this replica knows: from the cache, or
// from its own write the cache has not delivered yet.
func (b *Broker) currentOwner(havipID string) (kvcache.Item[records.Owner], bool) {
	cur, ok := b.owners.Get(records.OwnerKey(havipID))
	b.mu.Lock()
	defer b.mu.Unlock()
	if w, mine := b.written[havipID]; mine && w.ModRevision > cur.ModRevision {
		return w, true
	}
	return cur, ok
}

func (b *Broker) ownerRevision(havipID string) int64 {
	if havipID == "" {
		return 0
	}
	if it, ok := b.owners.Get(records.OwnerKey(havipID)); ok {
		return it.ModRevision
	}
	return 0
}

// write makes e the owner of h in one transaction guarded by leadership, by the HAVIP still
// existing, and by the owner record being the one the decision saw.
func (b *Broker) write(ctx context.Context, h records.HaVip, e records.NetworkInterface, r Report, cur kvcache.Item[records.Owner], hasOwner bool) (int64, error) {
	b.mu.Lock()
	lead := b.leader
	b.mu.Unlock()
	if lead == nil {
		return 0, ErrNotLeader
	}
	hv, ok := b.havips.Get(records.HaVipKey(h.ID))
	if !ok {
		return 0, fmt.Errorf("HAVIP %s vanished", h.ID)
	}
	ev, ok := b.enis.Get(records.NetworkInterfaceKey(e.ID))
	if !ok {
		return 0, errConflict // deleted since it was judged: judge again
	}
	rec := records.Owner{HaVipID: h.ID, VIP: h.VIP, NetworkInterfaceID: e.ID, InstanceID: e.InstanceID, HostID: b.hostOf(e.InstanceID), VpcID: h.VpcID, AgentID: r.AgentID, Session: r.Session, Changed: time.Now().UTC()}
	var curRev int64
	if hasOwner {
		curRev = cur.ModRevision
	}
	key := records.OwnerKey(h.ID)
	// Owner changes of different HAVIPs commit together (a mass failover is many at once); each
	// is still fenced by its own comparisons, and a batch that fails is retried one by one.
	res, err := b.batch.Commit(ctx, txnbatch.Txn{
		Cmps: []clientv3.Cmp{
			clientv3.Compare(clientv3.CreateRevision(lead.key), "=", lead.rev),
			// The HAVIP and the ENI as judged: a range edit or a detach since then judges again.
			clientv3.Compare(clientv3.ModRevision(records.HaVipKey(h.ID)), "=", hv.ModRevision),
			clientv3.Compare(clientv3.ModRevision(records.NetworkInterfaceKey(e.ID)), "=", ev.ModRevision),
			clientv3.Compare(clientv3.ModRevision(key), "=", curRev),
		},
		Ops: []clientv3.Op{clientv3.OpPut(key, kvcache.EncodeJSON(rec), clientv3.WithLease(clientv3.LeaseID(r.Session)))},
	})
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound): // the session ended: etcd refuses the whole transaction
		return 0, errNoSession(r.Session)
	case err != nil:
		return 0, fmt.Errorf("owner transaction: %w", err)
	case !res.Succeeded:
		return 0, errConflict
	}
	// The next claim is judged against this owner even before the watch delivers it.
	b.mu.Lock()
	b.written[h.ID] = kvcache.Item[records.Owner]{Key: key, Value: rec, CreateRevision: res.Revision, ModRevision: res.Revision}
	b.mu.Unlock()
	return res.Revision, nil
}

// errConflict is a write that lost to a concurrent change; the claim may be reported again.
var errConflict = errors.New("ownership changed concurrently; report again")

// deferClaim keeps the latest valid claim of a HAVIP in hold-down and applies it when the window ends.
func (b *Broker) deferClaim(havipID string, r Report, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r.deferred = true
	if p := b.pending[havipID]; p != nil {
		if !p.report.Seen.IsZero() && (r.Seen.IsZero() || p.report.Seen.Before(r.Seen)) {
			r.Seen = p.report.Seen // the change is measured from the first announcement
		}
		p.report = r // the last valid announcer wins
		return
	}
	p := &pendingClaim{report: r}
	p.timer = time.AfterFunc(wait, func() {
		b.mu.Lock()
		if b.pending[havipID] != p {
			b.mu.Unlock()
			return
		}
		delete(b.pending, havipID)
		r := p.report
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := b.Claim(ctx, r); err != nil {
			b.log.Warn("deferred claim", "havip", havipID, "err", err)
		}
	})
	b.pending[havipID] = p
}

func (b *Broker) cancelPending(havipID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := b.pending[havipID]; p != nil {
		p.timer.Stop()
		delete(b.pending, havipID)
	}
}

// Subscribe returns the current owners (as of a sync) and a channel of later changes, closed
// when ctx ends or the subscriber falls behind.
func (b *Broker) Subscribe(ctx context.Context) ([]OwnerChange, <-chan []OwnerChange, error) {
	if err := b.group.Sync(ctx); err != nil {
		return nil, nil, err
	}
	ch := make(chan []OwnerChange, 1024)
	var snap []OwnerChange
	// Under the owners cache's lock no hook runs: the snapshot and the subscription meet exactly.
	b.owners.View(func(items map[string]*kvcache.Item[records.Owner]) {
		for _, it := range items {
			o := it.Value
			snap = append(snap, OwnerChange{HaVipID: o.HaVipID, Owner: &o, Revision: it.ModRevision})
		}
		b.mu.Lock()
		b.subs[ch] = struct{}{}
		b.mu.Unlock()
	})
	sort.Slice(snap, func(i, j int) bool { return snap[i].Revision < snap[j].Revision })
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	})
	return snap, ch, nil
}

// rejectionTTL is how long a rejected claim stays listed.
const rejectionTTL = time.Hour

// Rejection indexes: a rejection is listed under its HAVIP, its VIP and its ENI.
const (
	ByHaVip = records.RejectionByHaVip
	ByVIP   = records.RejectionByVIP
	ByENI   = records.RejectionByENI
)

// recordRejection keeps a rejected claim (or a revocation) for tenants and operators, best
// effort, findable by HAVIP, VIP and ENI: every rejection, spoof attempts included, even when
// no HAVIP could be resolved. The same rejection repeated within a second (keepalived announces
// in bursts) is kept once, and the rejections of a minute share one lease.
func (b *Broker) recordRejection(ctx context.Context, h records.HaVip, r Report, rej *RuleError) {
	now := time.Now()
	vip := r.SenderIP
	if h.VIP.IsValid() {
		vip = h.VIP.String()
	}
	if a, err := netip.ParseAddr(vip); err != nil || !a.Is4() {
		vip = "" // not an address: not indexed by one
	}
	b.mu.Lock()
	dedupe := h.ID + "/" + vip + "/" + r.NetworkInterfaceID + "/" + rej.Reason
	if rej.Reason == ReasonNoSession {
		dedupe = r.NetworkInterfaceID + "/" + rej.Reason // the sender IP of such a report proves nothing
	}
	if last, ok := b.rejected[dedupe]; ok && now.Sub(last) < time.Second {
		b.mu.Unlock()
		return
	}
	// Each reporting identity gets a bounded rate of records: an agent sending made-up ENIs or
	// sessions cannot fill etcd (its claims are still judged and refused).
	bud := b.recordBudget[r.Identity]
	if bud == nil {
		bud = &budget{tokens: rejectionBurst, at: now}
		b.recordBudget[r.Identity] = bud
	}
	if rej.Reason != ReasonRevoked && !bud.take(now) { // the broker's own revocations always count
		b.mu.Unlock()
		return
	}
	b.rejected[dedupe] = now
	for k, t := range b.rejected {
		if now.Sub(t) > time.Second {
			delete(b.rejected, k)
		}
	}
	lease := b.rejectLease
	if now.Sub(b.rejectLeaseAt) > time.Minute {
		lease = 0
	}
	b.mu.Unlock()
	if lease == 0 {
		resp, err := b.cli.Grant(ctx, int64((rejectionTTL+time.Minute)/time.Second))
		if err != nil {
			return
		}
		lease = resp.ID
		b.mu.Lock()
		b.rejectLease, b.rejectLeaseAt = lease, now
		b.mu.Unlock()
	}
	rec := records.Rejection{Time: now.UTC(), AgentID: r.AgentID, Identity: r.Identity, NetworkInterfaceID: r.NetworkInterfaceID, HaVipID: h.ID, VIP: vip, Reason: rej.Reason, Message: rej.Message}
	val := kvcache.EncodeJSON(rec)
	id := strconv.FormatInt(rec.Time.UnixNano(), 10) + "-" + strconv.FormatUint(uint64(rand.Uint32()), 36)
	var ops []clientv3.Op
	for _, ix := range [][2]string{{ByHaVip, h.ID}, {ByVIP, vip}, {ByENI, r.NetworkInterfaceID}} {
		if ix[1] != "" {
			ops = append(ops, clientv3.OpPut(records.RejectionPrefix(ix[0], ix[1])+id, val, clientv3.WithLease(lease)))
		}
	}
	if len(ops) == 0 {
		return
	}
	if _, err := b.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		b.log.Warn("record rejection", "err", err)
	}
}

// Rejections lists the recent rejected claims (and revocations) of a HAVIP, a VIP or an ENI
// (index ByHaVip, ByVIP or ByENI), newest first.
func (b *Broker) Rejections(ctx context.Context, index, value string, limit int) ([]records.Rejection, error) {
	resp, err := b.cli.Get(ctx, records.RejectionPrefix(index, value), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("read rejections: %w", err)
	}
	out := make([]records.Rejection, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if r, err := kvcache.DecodeJSON[records.Rejection]("", kv.Value); err == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// The rate of rejection records each reporting identity may cause: a sustained rate per second
// and a burst.
const (
	rejectionRate  = 20.0
	rejectionBurst = 200.0
)

// budget is a token bucket.
type budget struct {
	tokens float64
	at     time.Time
}

// take spends a token if there is one, refilling at rejectionRate up to rejectionBurst.
func (b *budget) take(now time.Time) bool {
	b.tokens = min(rejectionBurst, b.tokens+now.Sub(b.at).Seconds()*rejectionRate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// OpenSession grants an agent's session lease, under an unguessable ID (63 random bits), and
// records whose it is under that lease: the agent, its host and the identity that opened it.
func (b *Broker) OpenSession(ctx context.Context, s Session, ttl time.Duration) (int64, error) {
	id, err := b.grant(ctx, int64(ttl/time.Second))
	if err != nil {
		return 0, err
	}
	if _, err := b.cli.Put(ctx, sessionKey(int64(id)), kvcache.EncodeJSON(s), clientv3.WithLease(id)); err != nil {
		_, _ = b.cli.Revoke(context.WithoutCancel(ctx), id)
		return 0, fmt.Errorf("record session: %w", err)
	}
	return int64(id), nil
}

// grant grants a lease under a random ID, so that session IDs cannot be guessed from one's own
// (etcd numbers the leases it names itself in sequence).
func (b *Broker) grant(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	leases := pb.NewLeaseClient(b.cli.ActiveConnection())
	for range 3 {
		var buf [8]byte
		_, _ = crand.Read(buf[:]) // never fails
		id := int64(binary.BigEndian.Uint64(buf[:]) >> 1)
		if id == 0 {
			continue
		}
		resp, err := leases.LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: ttl, ID: id})
		if errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseExist) {
			continue // taken: draw again
		}
		if err != nil {
			return 0, fmt.Errorf("grant session: %w", err)
		}
		if resp.Error != "" {
			return 0, fmt.Errorf("grant session: %s", resp.Error)
		}
		return clientv3.LeaseID(resp.ID), nil
	}
	return 0, errors.New("grant session: every random ID drawn was taken")
}

// KeepAlive renews an agent's session and returns its TTL; NotFound when the session is gone
// or is another agent's or another identity's.
func (b *Broker) KeepAlive(ctx context.Context, session int64, agentID, identity string) (time.Duration, error) {
	if _, err := b.session(ctx, session, agentID, identity); err != nil {
		return 0, err
	}
	resp, err := b.cli.KeepAliveOnce(ctx, clientv3.LeaseID(session))
	if err != nil {
		return 0, err
	}
	return time.Duration(resp.TTL) * time.Second, nil
}

// errNoSession is a claim on a session that is unknown or ended: the agent opens a new one.
func errNoSession(session int64) error {
	return apierr.NotFound("session %d is unknown or has expired; open a new one", session)
}

// checkSession returns the live session of the reporting agent a claim is made under, or
// refuses the claim.
func (b *Broker) checkSession(ctx context.Context, r Report) (Session, error) {
	if r.Session == 0 {
		return Session{}, apierr.New(apierr.ReasonEmpty, "session_id is required: open a session, and report under it")
	}
	return b.session(ctx, r.Session, r.AgentID, r.Identity)
}

// session returns an agent's live session; NotFound when it is unknown, ended, another agent's
// or opened by another identity.
func (b *Broker) session(ctx context.Context, id int64, agentID, identity string) (Session, error) {
	it, ok := b.sessions.Get(sessionKey(id))
	if !ok { // opened on another replica a moment ago, perhaps
		if err := b.sessions.Sync(ctx); err != nil {
			return Session{}, err
		}
		it, ok = b.sessions.Get(sessionKey(id))
	}
	if !ok || it.Value.AgentID != agentID || it.Value.Identity != identity {
		return Session{}, errNoSession(id)
	}
	return it.Value, nil
}

// hostOf is the host of a CVM ("" for none).
func (b *Broker) hostOf(instanceID string) string {
	if instanceID == "" {
		return ""
	}
	it, _ := b.instances.Get(records.InstanceKey(instanceID))
	return it.Value.HostID
}

// resolve finds the HAVIP a report names, as far as the report allows (for recording a
// rejection decided before the rules got to it).
func (b *Broker) resolve(r Report) (records.HaVip, bool) {
	e, ok := view{b}.eni(r.NetworkInterfaceID)
	if !ok {
		return records.HaVip{}, false
	}
	vip, err := netip.ParseAddr(r.SenderIP)
	if err != nil {
		return records.HaVip{}, false
	}
	return view{b}.havipByVIP(e.VpcID, vip)
}

// rechecker judges again, on the leader, the owner of every HAVIP queued by a change of the
// HAVIP (its range, check_associate) or of its owner ENI (detached, attached elsewhere,
// deleted), and revokes an owner that lost the right to it.
func (b *Broker) rechecker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		}
		b.mu.Lock()
		if b.leader == nil { // lost the lead: the next leader judges every owner again
			clear(b.recheck)
			b.mu.Unlock()
			continue
		}
		queued := make([]string, 0, len(b.recheck))
		for h := range b.recheck {
			queued = append(queued, h)
		}
		clear(b.recheck)
		b.mu.Unlock()
		for _, id := range queued {
			if err := b.revokeIfDisallowed(ctx, id); err != nil && ctx.Err() == nil {
				b.log.Warn("recheck owner", "havip", id, "err", err)
				b.mu.Lock()
				b.markLocked(id)
				b.mu.Unlock()
				select { // retry soon, not in a hot loop
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}
}

// revokeIfDisallowed removes a HAVIP's owner when the rules no longer let its ENI hold it: in
// one transaction guarded by leadership and by the owner record being the one judged (fenced
// like any owner change); the HAVIP turns UNBIND, the NAT rule loses its backend, and the
// revocation is recorded with the rule it broke.
func (b *Broker) revokeIfDisallowed(ctx context.Context, havipID string) error {
	cur, ok := b.currentOwner(havipID)
	if !ok {
		return nil
	}
	hv, ok := b.havips.Get(records.HaVipKey(havipID))
	if !ok {
		return nil // deleted: its delete removed the owner too
	}
	judge := func() *RuleError {
		e, ok := (view{b}).eni(cur.Value.NetworkInterfaceID)
		if !ok {
			return reject(ReasonUnknownENI, "no network interface %s", cur.Value.NetworkInterfaceID)
		}
		if rej := admissible(record(&hv), e); rej != nil {
			return rej
		}
		if e.InstanceID != cur.Value.InstanceID {
			// Detached and attached to another CVM since it announced: the VIP was configured
			// on the old machine, and the ownership names it; the new one must announce itself.
			return reject(ReasonNotAttached, "%s moved from %s to %s", e.ID, cur.Value.InstanceID, e.InstanceID)
		}
		return nil
	}
	rej := judge()
	if rej == nil {
		return nil
	}
	// The caches follow etcd each on its own watch: make sure the ENI's is not just behind (a
	// new leader may know an owner before its ENI) before taking a HAVIP from its owner.
	if err := b.group.Sync(ctx); err != nil {
		return err
	}
	if hv, ok = b.havips.Get(records.HaVipKey(havipID)); !ok {
		return nil
	}
	if rej = judge(); rej == nil {
		return nil
	}
	b.mu.Lock()
	lead := b.leader
	b.mu.Unlock()
	if lead == nil {
		return nil
	}
	key := records.OwnerKey(havipID)
	resp, err := b.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(lead.key), "=", lead.rev),
		clientv3.Compare(clientv3.ModRevision(key), "=", cur.ModRevision),
	).Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return fmt.Errorf("revoke transaction: %w", err)
	}
	if !resp.Succeeded {
		return nil // the owner changed meanwhile: that change queues its own recheck
	}
	b.mu.Lock()
	delete(b.written, havipID)
	b.mu.Unlock()
	b.log.Info("owner revoked", "havip", havipID, "eni", cur.Value.NetworkInterfaceID, "reason", rej.Reason)
	r := Report{AgentID: cur.Value.AgentID, NetworkInterfaceID: cur.Value.NetworkInterfaceID}
	b.recordRejection(ctx, record(&hv), r, reject(ReasonRevoked, "%s no longer may hold %s: %s", cur.Value.NetworkInterfaceID, havipID, rej.Message))
	return nil
}
