// Package store keeps HAVIPs in etcd and projects each one's state from the ARP broker's ownership records.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/eipbind"
	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/ipalloc"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/ownercache"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/retry"
	"github.com/openhavip/havip/platform/txnbatch"
)

// View is a HAVIP with its current owner and EIP.
type View struct {
	records.HaVip
	Owner         *records.Owner
	OwnerRevision int64
	Address       *records.AddressBinding
}

// tokenRecord is stored at a client token's key.
type tokenRecord struct {
	HaVipID     string `json:"havip_id"`
	RequestHash string `json:"request_hash"`
}

func tokenKey(account, token string) string { return records.HaVipTokens + account + "/" + token }

func addressKey(id string) string { return records.HaVipAddressKey(id) }

// Store is the HAVIP state: etcd is the truth; watched caches serve reads.
type Store struct {
	cli       *clientv3.Client
	batch     *txnbatch.Batcher
	group     *kvcache.Group
	havips    *havipcache.Cache
	owners    *ownercache.Cache
	addresses *kvcache.Cache[records.AddressBinding]

	// idx and addrIdx find HAVIPs by their fields and by their EIPs; the caches' hooks keep
	// them, and they are read under the caches' locks (havips.View, addresses.View).
	idx     *index
	addrIdx *addressIndex
}

// entry is a cached HAVIP.
type entry = havipcache.Item

// New returns a store on cli that reads the HAVIPs from havips and their owners from owners
// (which it may share with other services of the process). Call Start before use.
func New(cli *clientv3.Client, havips *havipcache.Cache, owners *ownercache.Cache, log *slog.Logger) *Store {
	g := kvcache.NewGroup(cli)
	rev := g.Revisions()
	s := &Store{cli: cli, batch: txnbatch.New(cli), group: g, havips: havips, owners: owners, idx: newIndex(), addrIdx: newAddressIndex()}
	havips.AddHook(s.idx.hook, s.idx.load)
	s.addresses = kvcache.New(cli, rev, records.HaVipAddresses, kvcache.DecodeJSON[records.AddressBinding], log, s.addrIdx.hook)
	g.Add(s.havips, s.owners, s.addresses)
	return s
}

// Start loads the state and follows it until ctx ends.
func (s *Store) Start(ctx context.Context) error { return s.group.Start(ctx) }

// Sync waits until reads reflect every write committed before the call (concurrent calls share
// one etcd round trip).
func (s *Store) Sync(ctx context.Context) error { return s.group.Sync(ctx) }

func (s *Store) view(h records.HaVip) View {
	v := View{HaVip: h}
	if o, ok := s.owners.Get(records.OwnerKey(h.ID)); ok {
		v.Owner, v.OwnerRevision = &o.Value, o.ModRevision
	}
	if a, ok := s.addresses.Get(addressKey(h.ID)); ok {
		v.Address = &a.Value
	}
	return v
}

// Get returns an account's HAVIP as cached; NotFound when it does not exist or is another's.
func (s *Store) Get(account, id string) (View, error) {
	it, ok := s.havips.Get(records.HaVipKey(id))
	if !ok || it.Value.Account() != account {
		return View{}, apierr.NotFound("HAVIP %s does not exist", id)
	}
	return s.view(it.Value.HaVip(it.Key)), nil
}

// AddressOf returns the EIP bound to a HAVIP, as cached.
func (s *Store) AddressOf(havipID string) (records.AddressBinding, bool) {
	a, ok := s.addresses.Get(addressKey(havipID))
	return a.Value, ok
}

// Token returns the HAVIP a client token created, and the hash of the request that did.
func (s *Store) Token(ctx context.Context, account, token string) (id, hash string, ok bool, err error) {
	resp, err := s.cli.Get(ctx, tokenKey(account, token))
	if err != nil {
		return "", "", false, fmt.Errorf("read client token: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", "", false, nil
	}
	t, err := kvcache.DecodeJSON[tokenRecord]("", resp.Kvs[0].Value)
	if err != nil {
		return "", "", false, fmt.Errorf("decode client token: %w", err)
	}
	return t.HaVipID, t.RequestHash, true, nil
}

// ErrTokenTaken is returned by Create when another create with the same client token won.
var ErrTokenTaken = errors.New("client token already used")

// ErrReservationLost is returned by Create when the VIP reservation expired before the commit,
// or the proposed address was taken (or its subnet deleted) meanwhile.
var ErrReservationLost = apierr.New(apierr.ReasonReservationLost, "the VIP reservation expired before the HAVIP was recorded; try again")

// Create records h and its VIP in one transaction: both or neither. vip is either a reservation
// of ipamd's, committed, or (Revision 0) a proposal of ipamd's, whose key is created if it is
// still absent and the subnet still has create revision subnetRev.
func (s *Store) Create(ctx context.Context, h records.HaVip, vip ipalloc.Allocation, subnetRev int64, requestHash string) error {
	commitCmp, commitPut := ipalloc.CommitOpsAt(records.Addresses, vip, h.ID)
	cmps := make([]clientv3.Cmp, 0, 4) // the address, the HAVIP, the subnet, the token
	cmps = append(cmps, commitCmp, clientv3.Compare(clientv3.Version(records.HaVipKey(h.ID)), "=", 0))
	if vip.Revision == 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(records.SubnetKey(h.SubnetID)), "=", subnetRev))
	}
	ops := make([]clientv3.Op, 0, 3)
	ops = append(ops, commitPut, clientv3.OpPut(records.HaVipKey(h.ID), records.EncodeHaVip(h)))
	// On failure: whether the HAVIP exists (h.ID is this create's own, so it exists only when an
	// earlier try of this very transaction committed though its answer was lost: txnbatch tries
	// each transaction of a batch again alone after an error), and whether the token is taken.
	elses := []clientv3.Op{clientv3.OpGet(records.HaVipKey(h.ID), clientv3.WithCountOnly())}
	if h.ClientToken != "" {
		tk := tokenKey(h.Account, h.ClientToken)
		cmps = append(cmps, clientv3.Compare(clientv3.Version(tk), "=", 0))
		ops = append(ops, clientv3.OpPut(tk, kvcache.EncodeJSON(tokenRecord{HaVipID: h.ID, RequestHash: requestHash})))
		elses = append(elses, clientv3.OpGet(tk, clientv3.WithCountOnly()))
	}
	// A create writes keys of its own (the HAVIP, its token) and its address's key, which
	// another create may write too (two replicas of ipamd can propose one address): txnbatch
	// never puts two transactions writing one key into one batch, so creates share batches.
	res, err := s.batch.Commit(ctx, txnbatch.Txn{Cmps: cmps, Ops: ops, Else: elses})
	if err != nil {
		return fmt.Errorf("create transaction: %w", err)
	}
	switch {
	case res.Succeeded, res.Else[0].GetResponseRange().Count > 0:
		return nil
	case len(elses) > 1 && res.Else[1].GetResponseRange().Count > 0:
		return ErrTokenTaken
	}
	return ErrReservationLost
}

// Update applies fn to an account's HAVIP and writes it back, if nothing changed it meanwhile.
func (s *Store) Update(ctx context.Context, account, id string, fn func(*records.HaVip) error) (View, error) {
	var out View
	err := retry.OnConflict(ctx, "HAVIP "+id, func(ctx context.Context) (bool, error) {
		if err := s.Sync(ctx); err != nil {
			return false, err
		}
		it, ok := s.havips.Get(records.HaVipKey(id))
		if !ok || it.Value.Account() != account {
			return false, apierr.NotFound("HAVIP %s does not exist", id)
		}
		h := it.Value.HaVip(it.Key)
		if err := fn(&h); err != nil {
			return false, err
		}
		resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(records.HaVipKey(id)), "=", it.ModRevision)).
			Then(clientv3.OpPut(records.HaVipKey(id), records.EncodeHaVip(h))).Commit()
		if err != nil {
			return false, fmt.Errorf("update transaction: %w", err)
		}
		out = s.view(h)
		return resp.Succeeded, nil
	})
	return out, err
}

// BindAddress binds the EIP at addressIP to the account's HAVIP id, and returns the HAVIP as
// the bind found it, with that EIP (not read back: a delete right after the bind must not turn
// a bind that happened into a NotFound).
func (s *Store) BindAddress(ctx context.Context, account, id, addressIP string) (View, error) {
	e, h, err := eipbind.BindHaVip(ctx, s.cli, account, id, addressIP)
	if err != nil {
		return View{}, err
	}
	v := s.view(h)
	v.Address = &records.AddressBinding{AddressID: e.ID, AddressIP: e.IP}
	return v, nil
}

// UnbindAddress unbinds the EIP of the account's HAVIP id, and returns the HAVIP as the unbind
// found it, without the EIP.
func (s *Store) UnbindAddress(ctx context.Context, account, id string) (View, error) {
	_, h, err := eipbind.UnbindHaVip(ctx, s.cli, account, id)
	if err != nil {
		return View{}, err
	}
	v := s.view(h)
	v.Address = nil
	return v, nil
}

// Delete removes an account's HAVIP, returns its VIP to the subnet and ends its ownership, in
// one transaction that also requires no EIP to be bound. The VIP's address record is deleted
// only while it is still this HAVIP's (compared in the transaction), never another holder's.
func (s *Store) Delete(ctx context.Context, account, id string) error {
	return retry.OnConflict(ctx, "HAVIP "+id, func(ctx context.Context) (bool, error) {
		if err := s.Sync(ctx); err != nil {
			return false, err
		}
		it, ok := s.havips.Get(records.HaVipKey(id))
		if !ok || it.Value.Account() != account {
			return false, apierr.NotFound("HAVIP %s does not exist", id)
		}
		h := it.Value.HaVip(it.Key)
		acmp, aops, _, err := ipalloc.ReleaseHeldOps(ctx, s.cli, records.AddressKey(h.SubnetID, h.VIP), id)
		if err != nil {
			return false, err
		}
		cmps := []clientv3.Cmp{
			clientv3.Compare(clientv3.ModRevision(records.HaVipKey(id)), "=", it.ModRevision),
			clientv3.Compare(clientv3.Version(addressKey(id)), "=", 0),
			acmp,
		}
		ops := append([]clientv3.Op{clientv3.OpDelete(records.HaVipKey(id)), clientv3.OpDelete(records.OwnerKey(id))}, aops...)
		if h.ClientToken != "" {
			ops = append(ops, clientv3.OpDelete(tokenKey(account, h.ClientToken)))
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(clientv3.OpGet(addressKey(id))).Commit()
		if err != nil {
			return false, fmt.Errorf("delete transaction: %w", err)
		}
		if resp.Succeeded {
			return true, nil
		}
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
			b, _ := kvcache.DecodeJSON[records.AddressBinding]("", kvs[0].Value)
			return false, apierr.New(apierr.ReasonBindEIP, "HAVIP %s has EIP %s bound; unbind it first", id, b.AddressIP)
		}
		return false, nil
	})
}

// Rejections returns the ARP broker's recent rejections of a HAVIP's claims (records.Rejections,
// under the HAVIP's index), newest first, at most limit.
func (s *Store) Rejections(ctx context.Context, havipID string, limit int) ([]records.Rejection, error) {
	resp, err := s.cli.Get(ctx, records.RejectionPrefix(records.RejectionByHaVip, havipID), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("read the rejections of %s: %w", havipID, err)
	}
	out := make([]records.Rejection, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if r, err := kvcache.DecodeJSON[records.Rejection]("", kv.Value); err == nil {
			out = append(out, r)
		}
	}
	return out, nil
}
