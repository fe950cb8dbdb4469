// Package record is the stored EIP and the transactions that bind it to a HAVIP, shared by eipd and havipd.
package record

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/ipalloc"
	"github.com/openhavip/havip/platform/keyspace"
	"github.com/openhavip/havip/platform/kvcache"
)

// Pool is the ipalloc pool ID of the public addresses.
const Pool = "public"

// Key is the etcd key of the EIP with public address ip: the address's allocation key.
func Key(ip string) string { return ipalloc.KeyAt(keyspace.EipIPs, Pool, ip) }

// Eip is a stored EIP, kept at its address's allocation key: its JSON is an ipalloc.Record as
// well (owner is the EIP ID). At most one of HaVipID and NetworkInterfaceID is set.
type Eip struct {
	ID      string `json:"owner"`
	Account string `json:"account"`
	// Reservation is set while the key is only an allocation's reservation (a multi-address
	// allocation not yet recorded); such a key is no EIP yet.
	Reservation        string    `json:"reservation,omitempty"`
	IP                 string    `json:"ip"`
	Name               string    `json:"name"`
	HaVipID            string    `json:"havip_id,omitempty"`
	NetworkInterfaceID string    `json:"network_interface_id,omitempty"`
	InstanceID         string    `json:"instance_id,omitempty"`
	PrivateIP          string    `json:"private_ip,omitempty"`
	Created            time.Time `json:"created"`
}

// Bound reports whether the EIP has a target.
func (e Eip) Bound() bool { return e.HaVipID != "" || e.NetworkInterfaceID != "" }

// binding is the HAVIP side of a HAVIP's EIP (keyspace.HaVipAddress).
type binding struct {
	AddressID string `json:"address_id"`
	AddressIP string `json:"address_ip"`
}

// havip is what a bind needs of a HAVIP record.
type havip struct {
	Account string `json:"account"`
	VIP     string `json:"vip"`
}

func get[T any](ctx context.Context, cli *clientv3.Client, key string) (T, int64, int64, bool, error) {
	var zero T
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return zero, 0, 0, false, fmt.Errorf("read %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return zero, 0, 0, false, nil
	}
	v, err := kvcache.DecodeJSON[T](key, resp.Kvs[0].Value)
	if err != nil {
		return zero, 0, 0, false, fmt.Errorf("decode %s: %w", key, err)
	}
	return v, resp.Kvs[0].CreateRevision, resp.Kvs[0].ModRevision, true, nil
}

// ByIP finds an account's EIP by its public address.
func ByIP(ctx context.Context, cli *clientv3.Client, account, ip string) (Eip, int64, error) {
	e, _, rev, ok, err := get[Eip](ctx, cli, Key(ip))
	if err != nil {
		return Eip{}, 0, err
	}
	if !ok || e.Account != account || e.Reservation != "" {
		return Eip{}, 0, apierr.NotFound("EIP %s does not exist", ip)
	}
	return e, rev, nil
}

// BindHaVip binds an account's EIP (by public IP) to its HAVIP, both sides in one transaction:
// the HAVIP must exist and have no EIP, the EIP must be bound to nothing.
func BindHaVip(ctx context.Context, cli *clientv3.Client, account, havipID, addressIP string) (Eip, error) {
	for range 8 {
		e, eRev, err := ByIP(ctx, cli, account, addressIP)
		if err != nil {
			return Eip{}, err
		}
		h, hCreate, _, ok, err := get[havip](ctx, cli, keyspace.HaVip(havipID))
		if err != nil {
			return Eip{}, err
		}
		if !ok || h.Account != account {
			return Eip{}, apierr.NotFound("HAVIP %s does not exist", havipID)
		}
		if e.Bound() {
			return Eip{}, apierr.FailedPrecondition(apierr.ReasonAddressBound, "EIP %s is already bound to %s%s", addressIP, e.HaVipID, e.NetworkInterfaceID)
		}
		bkey := keyspace.HaVipAddress + havipID
		e.HaVipID, e.PrivateIP = havipID, h.VIP
		resp, err := cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(Key(e.IP)), "=", eRev),
			clientv3.Compare(clientv3.CreateRevision(keyspace.HaVip(havipID)), "=", hCreate),
			clientv3.Compare(clientv3.Version(bkey), "=", 0),
		).Then(
			clientv3.OpPut(Key(e.IP), kvcache.EncodeJSON(e)),
			clientv3.OpPut(bkey, kvcache.EncodeJSON(binding{AddressID: e.ID, AddressIP: e.IP})),
		).Else(clientv3.OpGet(bkey, clientv3.WithCountOnly())).Commit()
		if err != nil {
			return Eip{}, fmt.Errorf("bind transaction: %w", err)
		}
		if resp.Succeeded {
			return e, nil
		}
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return Eip{}, apierr.FailedPrecondition(apierr.ReasonHaVipBound, "HAVIP %s already has an EIP", havipID)
		}
	}
	return Eip{}, apierr.Aborted(apierr.ReasonResourceInUse, "the EIP or the HAVIP kept changing; try again")
}

// UnbindHaVip removes the EIP of an account's HAVIP, both sides in one transaction.
func UnbindHaVip(ctx context.Context, cli *clientv3.Client, account, havipID string) (Eip, error) {
	bkey := keyspace.HaVipAddress + havipID
	for range 8 {
		h, _, _, ok, err := get[havip](ctx, cli, keyspace.HaVip(havipID))
		if err != nil {
			return Eip{}, err
		}
		if !ok || h.Account != account {
			return Eip{}, apierr.NotFound("HAVIP %s does not exist", havipID)
		}
		b, _, bRev, ok, err := get[binding](ctx, cli, bkey)
		if err != nil {
			return Eip{}, err
		}
		if !ok {
			return Eip{}, apierr.FailedPrecondition(apierr.ReasonAddressNotBound, "HAVIP %s has no EIP", havipID)
		}
		e, _, eRev, ok, err := get[Eip](ctx, cli, Key(b.AddressIP))
		if err != nil {
			return Eip{}, err
		}
		if !ok || e.ID != b.AddressID {
			return Eip{}, fmt.Errorf("EIP %s of HAVIP %s is missing", b.AddressID, havipID)
		}
		e.HaVipID, e.PrivateIP = "", ""
		resp, err := cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(bkey), "=", bRev),
			clientv3.Compare(clientv3.ModRevision(Key(e.IP)), "=", eRev),
		).Then(clientv3.OpDelete(bkey), clientv3.OpPut(Key(e.IP), kvcache.EncodeJSON(e))).Commit()
		if err != nil {
			return Eip{}, fmt.Errorf("unbind transaction: %w", err)
		}
		if resp.Succeeded {
			return e, nil
		}
	}
	return Eip{}, apierr.Aborted(apierr.ReasonResourceInUse, "the EIP or the HAVIP kept changing; try again")
}
