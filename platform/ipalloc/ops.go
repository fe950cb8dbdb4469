package ipalloc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/kvcache"
)

// CommitOps returns the comparison and the write that turn reservation al into a lasting
// allocation owned by owner, for a caller to put in a transaction of its own (so that the
// address and what uses it are recorded together, or neither is).
func (a *Allocator) CommitOps(al Allocation, owner string) (clientv3.Cmp, clientv3.Op) {
	return CommitOpsAt(a.root, al, owner)
}

// CommitOpsAt is CommitOps for a service that has no Allocator of its own: root is the
// allocator's key prefix and al the reservation as the allocator reported it, or an address
// Propose proposed with Revision 0 (the comparison then requires the key to be absent).
func CommitOpsAt(root string, al Allocation, owner string) (clientv3.Cmp, clientv3.Op) {
	val, _ := json.Marshal(Record{Owner: owner, Account: al.Record.Account})
	return commitOps(KeyAt(root, al.Pool, al.Addr.String()), al.Revision, string(val))
}

// CommitValueOps is CommitOps storing val at the address's key, as Request.Value does: val must
// decode as a Record naming the reservation's account and the address's owner.
func (a *Allocator) CommitValueOps(al Allocation, val string) (clientv3.Cmp, clientv3.Op) {
	return commitOps(a.Key(al.Pool, al.Addr), al.Revision, val)
}

// commitOps writes val at key, without the reservation's lease, if the reservation is unchanged.
func commitOps(key string, rev int64, val string) (clientv3.Cmp, clientv3.Op) {
	return clientv3.Compare(clientv3.ModRevision(key), "=", rev), clientv3.OpPut(key, val)
}

// Commit makes the reservation token of addr in poolID a lasting allocation owned by owner.
// It fails with UnsupportedOperation.ReservationExpired when the reservation is gone.
func (a *Allocator) Commit(ctx context.Context, poolID string, addr netip.Addr, token, owner string) (Allocation, error) {
	key := a.Key(poolID, addr)
	resp, err := a.cli.Get(ctx, key)
	if err != nil {
		return Allocation{}, fmt.Errorf("read reservation: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Allocation{}, apierr.New(apierr.ReasonReservationExpired, "no reservation of %s", addr)
	}
	rec, err := kvcache.DecodeJSON[Record](key, resp.Kvs[0].Value)
	if err != nil || rec.Reservation == "" || rec.Reservation != token {
		return Allocation{}, apierr.New(apierr.ReasonReservationExpired, "no reservation of %s with that token", addr)
	}
	al := Allocation{Pool: poolID, Addr: addr, Record: rec, Revision: resp.Kvs[0].ModRevision}
	cmp, put := a.CommitOps(al, owner)
	tresp, err := a.cli.Txn(ctx).If(cmp).Then(put).Commit()
	if err != nil {
		return Allocation{}, fmt.Errorf("commit reservation: %w", err)
	}
	if !tresp.Succeeded {
		return Allocation{}, apierr.New(apierr.ReasonReservationExpired, "reservation of %s changed", addr)
	}
	return Allocation{Pool: poolID, Addr: addr, Record: Record{Owner: owner, Account: rec.Account}, Revision: tresp.Header.Revision}, nil
}

// ReleaseOps returns the comparison and the delete that free addr, as long as it still is the
// allocation seen at revision rev.
func (a *Allocator) ReleaseOps(poolID string, addr netip.Addr, rev int64) (clientv3.Cmp, clientv3.Op) {
	key := a.Key(poolID, addr)
	return clientv3.Compare(clientv3.ModRevision(key), "=", rev), clientv3.OpDelete(key)
}

// ReleaseHeldOps reads the allocation at key (an address key of any allocator root) and returns
// what frees it in the caller's transaction only while owner holds it: a comparison that the
// key is as read (absent included) and, when owner holds it (committed, not a reservation), its
// delete. When another holds it, ops is empty and holder names that other, so that a delete never
// frees another holder's address.
func ReleaseHeldOps(ctx context.Context, cli *clientv3.Client, key, owner string) (cmp clientv3.Cmp, ops []clientv3.Op, holder string, err error) {
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return cmp, nil, "", fmt.Errorf("read %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return clientv3.Compare(clientv3.ModRevision(key), "=", 0), nil, "", nil
	}
	cmp = clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)
	rec, err := kvcache.DecodeJSON[Record](key, resp.Kvs[0].Value)
	if err != nil || rec.Owner != owner || rec.Reservation != "" {
		return cmp, nil, rec.Owner, nil
	}
	return cmp, []clientv3.Op{clientv3.OpDelete(key)}, owner, nil
}

// Lookup reads one allocation straight from etcd.
func (a *Allocator) Lookup(ctx context.Context, poolID string, addr netip.Addr) (Allocation, bool, error) {
	key := a.Key(poolID, addr)
	resp, err := a.cli.Get(ctx, key)
	if err != nil {
		return Allocation{}, false, fmt.Errorf("read allocation: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Allocation{}, false, nil
	}
	rec, err := kvcache.DecodeJSON[Record](key, resp.Kvs[0].Value)
	if err != nil {
		return Allocation{}, false, fmt.Errorf("decode allocation %s: %w", key, err)
	}
	return Allocation{Pool: poolID, Addr: addr, Record: rec, Revision: resp.Kvs[0].ModRevision}, true, nil
}

// WaitRevision waits until this replica's view includes every change up to rev.
func (a *Allocator) WaitRevision(ctx context.Context, rev int64) error {
	return a.cache.WaitRevision(ctx, rev)
}

// Counts returns how many addresses are allocated in each of the pools: from the bitmap of a
// pool this replica follows (as of its watch: Sync first for a count as fresh as a linearizable
// read; keys outside the pool's ranges, which allocations never make, are not counted), and
// otherwise etcd's count of the pool's keys (from its index, without reading them; up to
// maxCounts pools a round trip).
func (a *Allocator) Counts(ctx context.Context, poolIDs []string) ([]int, error) {
	out := make([]int, len(poolIDs))
	var ask []int // indexes of the pools etcd counts
	a.mu.Lock()
	for i, id := range poolIDs {
		if p := a.pools[id]; p != nil && p.state == current {
			out[i] = p.n
		} else {
			ask = append(ask, i)
		}
	}
	a.mu.Unlock()
	for len(ask) > 0 {
		part := ask[:min(len(ask), maxCounts)]
		ask = ask[len(part):]
		ops := make([]clientv3.Op, len(part))
		for j, i := range part {
			ops[j] = clientv3.OpGet(a.PoolPrefix(poolIDs[i]), clientv3.WithPrefix(), clientv3.WithCountOnly())
		}
		resp, err := a.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("count allocations: %w", err)
		}
		for j, r := range resp.Responses {
			out[part[j]] = int(r.GetResponseRange().Count)
		}
	}
	return out, nil
}

// maxCounts is how many pools one transaction of Counts counts (etcd allows 128 operations).
const maxCounts = 100

// List returns a pool's allocations in address order, read from etcd (so O(the pool's
// allocations), and as fresh as a linearizable read).
func (a *Allocator) List(ctx context.Context, poolID string) ([]Allocation, error) {
	resp, err := a.cli.Get(ctx, a.PoolPrefix(poolID), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", poolID, err)
	}
	out := make([]Allocation, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		_, addr, ok := a.parseKey(key)
		if !ok {
			continue
		}
		rec, err := kvcache.DecodeJSON[Record](key, kv.Value)
		if err != nil {
			a.log.Warn("skipping undecodable address", "key", key, "err", err)
			continue
		}
		out = append(out, Allocation{Pool: poolID, Addr: addr, Record: rec, Revision: kv.ModRevision})
	}
	slices.SortFunc(out, func(x, y Allocation) int { return x.Addr.Compare(y.Addr) })
	return out, nil
}

// leases hands out reservation leases. Reservations made within the same second share one
// lease, so a reservation costs no extra round trip most of the time; the lease lives TTL+1s,
// so every reservation lasts between TTL and TTL+1s.
type leases struct {
	cli *clientv3.Client
	mu  sync.Mutex
	cur map[time.Duration]leaseBucket
}

type leaseBucket struct {
	id      clientv3.LeaseID
	granted time.Time
}

func (l *leases) get(ctx context.Context, ttl time.Duration) (clientv3.LeaseID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.cur[ttl]; ok && time.Since(b.granted) < time.Second {
		return b.id, nil
	}
	resp, err := l.cli.Grant(ctx, int64((ttl+time.Second-1)/time.Second)+1)
	if err != nil {
		return 0, err
	}
	if l.cur == nil {
		l.cur = map[time.Duration]leaseBucket{}
	}
	l.cur[ttl] = leaseBucket{id: resp.ID, granted: time.Now()}
	return resp.ID, nil
}
