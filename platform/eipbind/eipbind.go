// Package eipbind binds an EIP to a HAVIP and unbinds it: both sides in one etcd transaction, for havipd and eipd.
package eipbind

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/retry"
)

func get[T any](ctx context.Context, cli *clientv3.Client, key string, decode func(string, []byte) (T, error)) (T, int64, int64, bool, error) {
	var zero T
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return zero, 0, 0, false, fmt.Errorf("read %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return zero, 0, 0, false, nil
	}
	v, err := decode(key, resp.Kvs[0].Value)
	if err != nil {
		return zero, 0, 0, false, fmt.Errorf("decode %s: %w", key, err)
	}
	return v, resp.Kvs[0].CreateRevision, resp.Kvs[0].ModRevision, true, nil
}

// ByIP finds an account's EIP by its public address.
func ByIP(ctx context.Context, cli *clientv3.Client, account, ip string) (records.Eip, int64, error) {
	e, _, rev, ok, err := get(ctx, cli, records.EipKey(ip), kvcache.DecodeJSON[records.Eip])
	if err != nil {
		return records.Eip{}, 0, err
	}
	if !ok || e.Account != account || e.Reservation != "" {
		return records.Eip{}, 0, apierr.NotFound("EIP %s does not exist", ip)
	}
	return e, rev, nil
}

// BindHaVip binds an account's EIP (by public IP) to its HAVIP, both sides in one transaction:
// the HAVIP must exist and have no EIP, the EIP must be bound to nothing. It returns the EIP as
// bound and the HAVIP as the transaction found it.
func BindHaVip(ctx context.Context, cli *clientv3.Client, account, havipID, addressIP string) (records.Eip, records.HaVip, error) {
	var out records.Eip
	var outH records.HaVip
	err := retry.OnConflict(ctx, "the EIP or the HAVIP", func(ctx context.Context) (bool, error) {
		e, eRev, err := ByIP(ctx, cli, account, addressIP)
		if err != nil {
			return false, err
		}
		h, hCreate, _, ok, err := get(ctx, cli, records.HaVipKey(havipID), records.DecodeHaVipAt)
		if err != nil {
			return false, err
		}
		if !ok || h.Account != account {
			return false, apierr.NotFound("HAVIP %s does not exist", havipID)
		}
		if e.Bound() {
			return false, apierr.New(apierr.ReasonAddressBound, "EIP %s is already bound to %s%s", addressIP, e.HaVipID, e.NetworkInterfaceID)
		}
		bkey := records.HaVipAddressKey(havipID)
		e.HaVipID, e.PrivateIP = havipID, h.VIP.String()
		resp, err := cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(records.EipKey(e.IP)), "=", eRev),
			clientv3.Compare(clientv3.CreateRevision(records.HaVipKey(havipID)), "=", hCreate),
			clientv3.Compare(clientv3.Version(bkey), "=", 0),
		).Then(
			clientv3.OpPut(records.EipKey(e.IP), kvcache.EncodeJSON(e)),
			clientv3.OpPut(bkey, kvcache.EncodeJSON(records.AddressBinding{AddressID: e.ID, AddressIP: e.IP})),
		).Else(clientv3.OpGet(bkey, clientv3.WithCountOnly())).Commit()
		switch {
		case err != nil:
			return false, fmt.Errorf("bind transaction: %w", err)
		case !resp.Succeeded && resp.Responses[0].GetResponseRange().GetCount() > 0:
			return false, apierr.New(apierr.ReasonHaVipBound, "HAVIP %s already has an EIP", havipID)
		}
		out, outH = e, h
		return resp.Succeeded, nil
	})
	return out, outH, err
}

// UnbindHaVip removes the EIP of an account's HAVIP, both sides in one transaction. It returns
// the EIP as unbound and the HAVIP as the transaction found it.
func UnbindHaVip(ctx context.Context, cli *clientv3.Client, account, havipID string) (records.Eip, records.HaVip, error) {
	bkey := records.HaVipAddressKey(havipID)
	var out records.Eip
	var outH records.HaVip
	err := retry.OnConflict(ctx, "the EIP or the HAVIP", func(ctx context.Context) (bool, error) {
		h, _, _, ok, err := get(ctx, cli, records.HaVipKey(havipID), records.DecodeHaVipAt)
		if err != nil {
			return false, err
		}
		if !ok || h.Account != account {
			return false, apierr.NotFound("HAVIP %s does not exist", havipID)
		}
		b, _, bRev, ok, err := get(ctx, cli, bkey, kvcache.DecodeJSON[records.AddressBinding])
		if err != nil {
			return false, err
		}
		if !ok {
			return false, apierr.New(apierr.ReasonAddressNotBound, "HAVIP %s has no EIP", havipID)
		}
		e, _, eRev, ok, err := get(ctx, cli, records.EipKey(b.AddressIP), kvcache.DecodeJSON[records.Eip])
		if err != nil {
			return false, err
		}
		if !ok || e.ID != b.AddressID {
			return false, fmt.Errorf("EIP %s of HAVIP %s is missing", b.AddressID, havipID)
		}
		e.HaVipID, e.PrivateIP = "", ""
		resp, err := cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(bkey), "=", bRev),
			clientv3.Compare(clientv3.ModRevision(records.EipKey(e.IP)), "=", eRev),
		).Then(clientv3.OpDelete(bkey), clientv3.OpPut(records.EipKey(e.IP), kvcache.EncodeJSON(e))).Commit()
		if err != nil {
			return false, fmt.Errorf("unbind transaction: %w", err)
		}
		out, outH = e, h
		return resp.Succeeded, nil
	})
	return out, outH, err
}
