package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
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
	cli *clientv3.Client
	log *slog.Logger
	cfg Config

	group     *kvcache.Group
	enis      *kvcache.Cache[records.NetworkInterface]
	instances *kvcache.Cache[records.Instance]
	havips    *kvcache.Cache[records.HaVip]
	owners    *kvcache.Cache[records.Owner]

	mu      sync.Mutex
	byVIP   map[string]string                      // vpc/vip → HAVIP ID (under havips' cache lock)
	pending map[string]*pendingClaim               // HAVIP ID → the latest claim waiting out the hold-down
	written map[string]kvcache.Item[records.Owner] // owners this replica wrote that the cache may not have yet

	rejected      map[string]time.Time // HAVIP/ENI/reason → when last recorded
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

// New returns a broker on cli. Call Start before use.
func New(cli *clientv3.Client, log *slog.Logger, cfg Config) *Broker {
	if cfg.HoldDown <= 0 {
		cfg.HoldDown = DefaultHoldDown
	}
	if cfg.ElectionTTL <= 0 {
		cfg.ElectionTTL = DefaultElectionTTL
	}
	g := kvcache.NewGroup(cli)
	rev := g.Revisions()
	b := &Broker{cli: cli, log: log, cfg: cfg, group: g, byVIP: map[string]string{}, pending: map[string]*pendingClaim{}, written: map[string]kvcache.Item[records.Owner]{}, rejected: map[string]time.Time{}, subs: map[chan []OwnerChange]struct{}{}}
	b.enis = kvcache.New(cli, rev, records.NetworkInterfaces, kvcache.DecodeJSON[records.NetworkInterface], log)
	b.instances = kvcache.New(cli, rev, records.Instances, kvcache.DecodeJSON[records.Instance], log)
	b.havips = kvcache.New(cli, rev, records.HaVips, kvcache.DecodeJSON[records.HaVip], log, b.indexVIP)
	b.owners = kvcache.New(cli, rev, records.Owners, kvcache.DecodeJSON[records.Owner], log, b.publish)
	g.Add(b.enis, b.instances, b.havips, b.owners)
	return b
}

func vipKey(vpc string, vip netip.Addr) string { return vpc + "/" + vip.String() }

func (b *Broker) indexVIP(prev, cur *kvcache.Item[records.HaVip], _ int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev != nil {
		delete(b.byVIP, vipKey(prev.Value.VpcID, prev.Value.VIP))
	}
	if cur != nil {
		b.byVIP[vipKey(cur.Value.VpcID, cur.Value.VIP)] = cur.Value.ID
	}
}

// publish tells watchers of every owner change (a kvcache hook, in revision order).
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
	go b.campaign(ctx)
	return nil
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
		b.mu.Unlock()
		b.log.Info("leading the broker replicas", "addr", b.cfg.Addr)
		select {
		case <-ctx.Done():
		case <-sess.Done():
			b.log.Warn("lost leadership")
		}
		b.mu.Lock()
		b.leader = nil
		b.mu.Unlock()
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
	it, ok := v.b.enis.Get(records.NetworkInterfaces + id)
	return it.Value, ok
}

func (v view) havipByVIP(vpc string, vip netip.Addr) (records.HaVip, bool) {
	v.b.mu.Lock()
	id, ok := v.b.byVIP[vipKey(vpc, vip)]
	v.b.mu.Unlock()
	if !ok {
		return records.HaVip{}, false
	}
	it, ok := v.b.havips.Get(records.HaVipKey(id))
	return it.Value, ok
}

// Claim judges a report and, on the leader, applies it. Claims that race (keepalived sends a
// burst of five) are judged again after the winner's write: the others then find their ENI
// already the owner.
func (b *Broker) Claim(ctx context.Context, r Report) (Outcome, error) {
	for range 3 {
		out, err := b.claim(ctx, r)
		if !errors.Is(err, errConflict) {
			return out, err
		}
		if err := b.group.Sync(ctx); err != nil {
			return Outcome{}, err
		}
	}
	return Outcome{}, apierr.Conflict("%v", errConflict)
}

func (b *Broker) claim(ctx context.Context, r Report) (Outcome, error) {
	if !b.IsLeader() {
		return Outcome{}, ErrNotLeader
	}
	h, e, rej := check(view{b}, r)
	if rej != nil {
		b.recordRejection(ctx, h.ID, r, rej)
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
		return Outcome{}, err
	}
	b.cancelPending(h.ID)
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
	rec := records.Owner{HaVipID: h.ID, VIP: h.VIP, NetworkInterfaceID: e.ID, InstanceID: e.InstanceID, AgentID: r.AgentID, Session: r.Session, Changed: time.Now().UTC()}
	if ins, ok := b.instances.Get(records.Instances + e.InstanceID); ok {
		rec.HostID = ins.Value.HostID
	}
	var curRev int64
	if hasOwner {
		curRev = cur.ModRevision
	}
	key := records.OwnerKey(h.ID)
	resp, err := b.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(lead.key), "=", lead.rev),
		clientv3.Compare(clientv3.CreateRevision(records.HaVipKey(h.ID)), "=", hv.CreateRevision),
		clientv3.Compare(clientv3.ModRevision(key), "=", curRev),
	).Then(clientv3.OpPut(key, kvcache.EncodeJSON(rec), clientv3.WithLease(clientv3.LeaseID(r.Session)))).Commit()
	if err != nil {
		return 0, fmt.Errorf("owner transaction: %w", err)
	}
	if !resp.Succeeded {
		return 0, errConflict
	}
	// The next claim is judged against this owner even before the watch delivers it.
	b.mu.Lock()
	b.written[h.ID] = kvcache.Item[records.Owner]{Key: key, Value: rec, CreateRevision: resp.Header.Revision, ModRevision: resp.Header.Revision}
	b.mu.Unlock()
	return resp.Header.Revision, nil
}

// errConflict is a write that lost to a concurrent change; the claim may be reported again.
var errConflict = errors.New("ownership changed concurrently; report again")

// deferClaim keeps the latest valid claim of a HAVIP in hold-down and applies it when the window ends.
func (b *Broker) deferClaim(havipID string, r Report, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := b.pending[havipID]; p != nil {
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

// recordRejection keeps a rejected claim of a known HAVIP for operators (best effort). The
// same rejection repeated within a second (keepalived announces in bursts) is kept once, and
// the rejections of a minute share one lease.
func (b *Broker) recordRejection(ctx context.Context, havipID string, r Report, rej *RuleError) {
	if havipID == "" {
		return
	}
	now := time.Now()
	b.mu.Lock()
	dedupe := havipID + "/" + r.NetworkInterfaceID + "/" + rej.Reason
	if last, ok := b.rejected[dedupe]; ok && now.Sub(last) < time.Second {
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
	rec := Rejection{Time: now.UTC(), AgentID: r.AgentID, NetworkInterfaceID: r.NetworkInterfaceID, Reason: rej.Reason, Message: rej.Message}
	key := records.Rejections + havipID + "/" + strconv.FormatInt(rec.Time.UnixNano(), 10)
	if _, err := b.cli.Put(ctx, key, kvcache.EncodeJSON(rec), clientv3.WithLease(lease)); err != nil {
		b.log.Warn("record rejection", "err", err)
	}
}

// Rejections lists a HAVIP's recent rejected claims, newest first.
func (b *Broker) Rejections(ctx context.Context, havipID string, limit int) ([]Rejection, error) {
	resp, err := b.cli.Get(ctx, records.Rejections+havipID+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("read rejections: %w", err)
	}
	out := make([]Rejection, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if r, err := kvcache.DecodeJSON[Rejection]("", kv.Value); err == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// OpenSession grants an agent's session lease.
func (b *Broker) OpenSession(ctx context.Context, ttl time.Duration) (int64, error) {
	resp, err := b.cli.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		return 0, fmt.Errorf("grant session: %w", err)
	}
	return int64(resp.ID), nil
}

// KeepAlive renews an agent's session and returns its TTL; 0 when the session is gone.
func (b *Broker) KeepAlive(ctx context.Context, session int64) (time.Duration, error) {
	resp, err := b.cli.KeepAliveOnce(ctx, clientv3.LeaseID(session))
	if err != nil {
		return 0, err
	}
	return time.Duration(resp.TTL) * time.Second, nil
}
