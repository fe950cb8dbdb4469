// Package store keeps EIPs in etcd: public addresses from the pools, their bindings, and the backend each maps to now.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/idseq"
	"github.com/openhavip/havip/platform/ipalloc"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/ownercache"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/retry"
	"github.com/openhavip/havip/services/eip/natrule"
)

// reservationTTL bounds how long an address reserved by an allocation that crashed stays taken.
const reservationTTL = 30 * time.Second

// Backend is where an EIP's traffic goes now.
type Backend struct {
	NetworkInterfaceID, InstanceID, HostID, PrivateIP string
	// Reaches is whether there is a server behind it (false for a HAVIP without owner).
	Reaches bool
}

// View is an EIP with its current backend.
type View struct {
	records.Eip
	Backend Backend
}

// Store is the EIP state.
type Store struct {
	cli       *clientv3.Client
	group     *kvcache.Group
	eips      *kvcache.Cache[records.Eip]
	enis      *kvcache.Cache[records.NetworkInterface]
	instances *kvcache.Cache[records.Instance]
	nat       *natrule.Table
	alloc     *ipalloc.Allocator
	pool      ipalloc.Pool
	ids       *idseq.Source

	mu   sync.Mutex
	byID map[string]string // EIP ID → its key, kept by the EIP cache's hook

	eipsOf *kvcache.Index[records.Eip] // each account's EIPs in creation order
}

// New returns a store allocating from ranges, reading the HAVIPs' owners from owners (which it
// may share with other services of the process). Call Start before use.
func New(cli *clientv3.Client, owners *ownercache.Cache, log *slog.Logger, ranges []ipalloc.Range) *Store {
	g := kvcache.NewGroup(cli)
	rev := g.Revisions()
	s := &Store{
		cli:       cli,
		group:     g,
		instances: kvcache.New(cli, rev, records.Instances, kvcache.DecodeJSON[records.Instance], log),
		alloc:     ipalloc.New(cli, rev, records.EipIPs, log),
		pool:      ipalloc.Pool{ID: records.EipPool, Ranges: ranges},
		ids:       idseq.New(cli, records.EipIDCounter, ids.Address),
		byID:      map[string]string{},
		eipsOf:    kvcache.NewIndex(func(e records.Eip) string { return e.Account }),
	}
	s.nat = natrule.New(func(instanceID string) string {
		ins, _ := s.instances.Get(records.InstanceKey(instanceID))
		return ins.Value.HostID
	})
	s.enis = kvcache.New(cli, rev, records.NetworkInterfaces, kvcache.DecodeJSON[records.NetworkInterface], log, s.nat.ENIHook)
	s.eips = kvcache.New(cli, rev, records.EipIPs, kvcache.DecodeJSON[records.Eip], log, s.nat.EipHook, s.indexID, s.eipsOf.Hook)
	owners.AddHook(s.nat.OwnerHook(func(key string) string { return strings.TrimPrefix(key, records.Owners) }), nil)
	// The ENIs, instances and owners load before the EIPs: the rule of an ENI-bound EIP names its
	// CVM and host, a HAVIP-bound one its owner. The owner cache may be shared and loaded
	// already: AddHook has then told the hook of every owner, and its Start waits for that load.
	g.Add(s.enis, s.instances, owners, s.eips, s.alloc)
	return s
}

// indexID keeps byID (a kvcache hook). A key changes EIP only through a delete, but a cache
// reload reports the difference of two states, which may replace one EIP by another.
func (s *Store) indexID(prev, cur *kvcache.Item[records.Eip], _ int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev != nil && (cur == nil || cur.Value.ID != prev.Value.ID) && s.byID[prev.Value.ID] == prev.Key {
		delete(s.byID, prev.Value.ID)
	}
	if cur != nil {
		s.byID[cur.Value.ID] = cur.Key
	}
}

// ParsePools reads public pools: comma-separated CIDRs (network and broadcast excluded) or
// first-last ranges.
func ParsePools(spec string) ([]ipalloc.Range, error) {
	var out []ipalloc.Range
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if first, last, ok := strings.Cut(part, "-"); ok {
			a, err1 := netip.ParseAddr(first)
			b, err2 := netip.ParseAddr(last)
			if err1 != nil || err2 != nil || !a.Is4() || !b.Is4() || b.Less(a) {
				return nil, fmt.Errorf("pool range %q: want first-last IPv4", part)
			}
			out = append(out, ipalloc.Range{First: a, Last: b})
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("pool %q: %w", part, err)
		}
		r, err := ipalloc.CIDRHosts(p, 0)
		if err != nil {
			return nil, fmt.Errorf("pool %q: %w", part, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no public pool in %q", spec)
	}
	return out, nil
}

// Start loads the state and follows it until ctx ends.
func (s *Store) Start(ctx context.Context) error { return s.group.Start(ctx) }

// Sync makes the next reads as fresh as linearizable reads.
func (s *Store) Sync(ctx context.Context) error { return s.group.Sync(ctx) }

// view shows an EIP with the backend of its NAT rule, so DescribeAddresses and WatchNatRules
// agree.
func (s *Store) view(e records.Eip) View {
	v := View{Eip: e}
	if r, ok := s.nat.Get(e.ID); ok && e.Bound() {
		v.Backend = Backend{NetworkInterfaceID: r.NetworkInterfaceID, InstanceID: r.InstanceID, HostID: r.HostID, PrivateIP: r.PrivateIP, Reaches: r.Reaches()}
	}
	return v
}

// WatchNatRules returns every current NAT rule, as of a sync, and a channel of later changes,
// closed when ctx ends or the watcher falls behind.
func (s *Store) WatchNatRules(ctx context.Context) ([]natrule.Rule, <-chan []natrule.Rule, error) {
	if err := s.Sync(ctx); err != nil {
		return nil, nil, err
	}
	snap, ch := s.nat.Subscribe(ctx)
	return snap, ch, nil
}

// List returns an account's EIPs, oldest first, as of now.
func (s *Store) List(ctx context.Context, account string) ([]View, error) {
	if err := s.Sync(ctx); err != nil {
		return nil, err
	}
	eips := s.eipsOf.List(account, func(e records.Eip) bool { return e.Reservation == "" })
	out := make([]View, len(eips))
	for i, e := range eips {
		out[i] = s.view(e)
	}
	return out, nil
}

func (s *Store) get(account, id string) (kvcache.Item[records.Eip], error) {
	s.mu.Lock()
	key, ok := s.byID[id]
	s.mu.Unlock()
	it, found := s.eips.Get(key)
	if !ok || !found || it.Value.ID != id || it.Value.Account != account || it.Value.Reservation != "" {
		return kvcache.Item[records.Eip]{}, apierr.NotFound("EIP %s does not exist", id)
	}
	return it, nil
}

// tokenRecord is stored at a client token's key.
type tokenRecord struct {
	IDs  []string `json:"ids"`
	Hash string   `json:"hash"`
}

// RequestHash identifies an allocation request for its client token.
func RequestHash(count int, name string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d/%s", count, name))
	return hex.EncodeToString(sum[:])
}

// Allocate allocates count EIPs; with a client token, the same request returns the same EIPs.
func (s *Store) Allocate(ctx context.Context, account string, count int, name, token string) ([]View, error) {
	now := time.Now().UTC()
	if count == 1 && token == "" {
		id, err := s.ids.Next(ctx)
		if err != nil {
			return nil, err
		}
		return s.allocateOne(ctx, records.Eip{ID: id, Account: account, Name: name, Created: now})
	}
	hash := RequestHash(count, name)
	tkey := records.EipTokens + account + "/" + token
	if token != "" {
		if views, done, err := s.byToken(ctx, account, tkey, hash); done || err != nil {
			return views, err
		}
	}
	eips := make([]records.Eip, count)
	als := make([]ipalloc.Allocation, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i := range eips {
		id, err := s.ids.Next(ctx)
		if err != nil {
			return nil, err
		}
		eips[i] = records.Eip{ID: id, Account: account, Name: name, Created: now}
	}
	for i := range eips {
		wg.Add(1)
		go func() {
			defer wg.Done()
			als[i], errs[i] = s.alloc.Allocate(ctx, s.pool, ipalloc.Request{Owner: eips[i].ID, Account: account, TTL: reservationTTL})
		}()
	}
	wg.Wait()
	release := func() {
		for i, al := range als {
			if errs[i] == nil {
				cmp, del := s.alloc.ReleaseOps(records.EipPool, al.Addr, al.Revision)
				_, _ = s.cli.Txn(context.WithoutCancel(ctx)).If(cmp).Then(del).Commit()
			}
		}
	}
	for _, err := range errs {
		if err != nil {
			release()
			return nil, err
		}
	}
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	var idList []string
	for i := range eips {
		eips[i].IP = als[i].Addr.String()
		c, p := s.alloc.CommitValueOps(als[i], kvcache.EncodeJSON(eips[i]))
		cmps, ops = append(cmps, c), append(ops, p)
		idList = append(idList, eips[i].ID)
	}
	if token != "" {
		cmps = append(cmps, clientv3.Compare(clientv3.Version(tkey), "=", 0))
		ops = append(ops, clientv3.OpPut(tkey, kvcache.EncodeJSON(tokenRecord{IDs: idList, Hash: hash})))
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		release()
		return nil, fmt.Errorf("allocate transaction: %w", err)
	}
	if !resp.Succeeded {
		release()
		if token != "" {
			if views, done, err := s.byToken(ctx, account, tkey, hash); done || err != nil {
				return views, err
			}
		}
		return nil, apierr.New(apierr.ReasonReservationLost, "the address reservations expired before the EIPs were recorded; try again")
	}
	out := make([]View, count)
	for i, e := range eips {
		out[i] = View{Eip: e}
	}
	return out, nil
}

// allocateOne allocates one EIP in a single transaction, batched with concurrent ones: the
// address's key is written with the EIP record as its value.
func (s *Store) allocateOne(ctx context.Context, e records.Eip) ([]View, error) {
	al, err := s.alloc.Allocate(ctx, s.pool, ipalloc.Request{Owner: e.ID, Account: e.Account, Value: func(addr netip.Addr) string {
		rec := e
		rec.IP = addr.String()
		return kvcache.EncodeJSON(rec)
	}})
	if err != nil {
		return nil, err
	}
	e.IP = al.Addr.String()
	return []View{{Eip: e}}, nil
}

func (s *Store) byToken(ctx context.Context, account, tkey, hash string) ([]View, bool, error) {
	resp, err := s.cli.Get(ctx, tkey)
	if err != nil {
		return nil, true, fmt.Errorf("read client token: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	t, err := kvcache.DecodeJSON[tokenRecord]("", resp.Kvs[0].Value)
	if err != nil {
		return nil, true, err
	}
	if t.Hash != hash {
		return nil, true, apierr.New(apierr.ReasonIdempotentParameterChange, "client_token was used with a different request")
	}
	if err := s.Sync(ctx); err != nil {
		return nil, true, err
	}
	var out []View
	for _, id := range t.IDs {
		it, err := s.get(account, id)
		if err != nil {
			return nil, true, err
		}
		out = append(out, s.view(it.Value))
	}
	return out, true, nil
}

// update applies fn to an account's EIP and writes it back with extra operations, if nothing
// changed it meanwhile; fn returns the extra comparisons and operations of the transaction.
func (s *Store) update(ctx context.Context, account, id string, fn func(e *records.Eip) ([]clientv3.Cmp, []clientv3.Op, error)) (View, error) {
	var out View
	err := retry.OnConflict(ctx, "EIP "+id, func(ctx context.Context) (bool, error) {
		if err := s.Sync(ctx); err != nil {
			return false, err
		}
		it, err := s.get(account, id)
		if err != nil {
			return false, err
		}
		e := it.Value
		cmps, ops, err := fn(&e)
		if err != nil {
			return false, err
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(it.Key), "=", it.ModRevision))
		ops = append(ops, clientv3.OpPut(it.Key, kvcache.EncodeJSON(e)))
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil || !resp.Succeeded {
			return false, wrapTxn("update", err)
		}
		// The backend comes from the NAT rules, which follow the EIP cache.
		if err := s.eips.WaitRevision(ctx, resp.Header.Revision); err != nil {
			return false, err
		}
		out = s.view(e)
		return true, nil
	})
	return out, err
}

// wrapTxn names a failed transaction (nil for one that only lost a comparison).
func wrapTxn(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s transaction: %w", what, err)
}

// Rename renames an EIP.
func (s *Store) Rename(ctx context.Context, account, id, name string) (View, error) {
	return s.update(ctx, account, id, func(e *records.Eip) ([]clientv3.Cmp, []clientv3.Op, error) {
		e.Name = name
		return nil, nil, nil
	})
}

func eniBindingKey(eniID, ip string) string { return records.EipENIBindings + eniID + "/" + ip }

// AssociateENI binds an unbound EIP to an ENI's private IP (its primary IP when ip is empty).
func (s *Store) AssociateENI(ctx context.Context, account, id, eniID, ip string) (View, error) {
	return s.update(ctx, account, id, func(e *records.Eip) ([]clientv3.Cmp, []clientv3.Op, error) {
		if e.Bound() {
			return nil, nil, apierr.New(apierr.ReasonAddressBound, "EIP %s is already bound", id)
		}
		n, ok := s.enis.Get(records.NetworkInterfaceKey(eniID))
		if !ok || n.Value.Account != account {
			return nil, nil, apierr.NotFound("network interface %s does not exist", eniID)
		}
		if ip == "" {
			ip = n.Value.IP.String()
		}
		if ip != n.Value.IP.String() {
			return nil, nil, apierr.New(apierr.ReasonRange, "%s is not a private IP of %s (%s)", ip, eniID, n.Value.IP)
		}
		e.NetworkInterfaceID, e.PrivateIP = eniID, ip
		bkey := eniBindingKey(eniID, ip)
		if _, taken := s.eipOfENI(ctx, bkey); taken {
			return nil, nil, apierr.New(apierr.ReasonAddressBound, "%s of %s already has an EIP", ip, eniID)
		}
		return []clientv3.Cmp{
				clientv3.Compare(clientv3.Version(bkey), "=", 0),
				clientv3.Compare(clientv3.CreateRevision(records.NetworkInterfaceKey(eniID)), "=", n.CreateRevision),
			},
			[]clientv3.Op{clientv3.OpPut(bkey, id)}, nil
	})
}

func (s *Store) eipOfENI(ctx context.Context, bkey string) (string, bool) {
	resp, err := s.cli.Get(ctx, bkey)
	if err != nil || len(resp.Kvs) == 0 {
		return "", false
	}
	return string(resp.Kvs[0].Value), true
}

// DisassociateENI unbinds an EIP bound to an ENI.
func (s *Store) DisassociateENI(ctx context.Context, account, id string) (View, error) {
	return s.update(ctx, account, id, func(e *records.Eip) ([]clientv3.Cmp, []clientv3.Op, error) {
		if e.NetworkInterfaceID == "" {
			return nil, nil, apierr.New(apierr.ReasonAddressNotBound, "EIP %s is not bound to a network interface", id)
		}
		del := clientv3.OpDelete(eniBindingKey(e.NetworkInterfaceID, e.PrivateIP))
		e.NetworkInterfaceID, e.PrivateIP = "", ""
		return nil, []clientv3.Op{del}, nil
	})
}

// Get returns an account's EIP as it is now.
func (s *Store) Get(ctx context.Context, account, id string) (View, error) {
	if err := s.Sync(ctx); err != nil {
		return View{}, err
	}
	it, err := s.get(account, id)
	if err != nil {
		return View{}, err
	}
	return s.view(it.Value), nil
}

// Release releases EIPs (all or none); a bound one refuses the whole call.
func (s *Store) Release(ctx context.Context, account string, idList []string) error {
	return retry.OnConflict(ctx, "the EIPs", func(ctx context.Context) (bool, error) {
		if err := s.Sync(ctx); err != nil {
			return false, err
		}
		var cmps []clientv3.Cmp
		var ops []clientv3.Op
		for _, id := range idList {
			it, err := s.get(account, id)
			if err != nil {
				return false, err
			}
			if it.Value.Bound() {
				return false, apierr.New(apierr.ReasonAddressBound, "EIP %s is bound; unbind it first", id)
			}
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(it.Key), "=", it.ModRevision))
			ops = append(ops, clientv3.OpDelete(it.Key))
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return false, wrapTxn("release", err)
		}
		return resp.Succeeded, nil
	})
}
