package store_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/ipalloc"
	"github.com/openhavip/havip/platform/ownercache"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/services/havip/store"
)

// TestCreateFromProposal: a create from a proposal (Revision 0) writes nothing when its subnet
// was deleted (or is not the one proposed from), nor when the address exists; it writes the
// HAVIP and the address together otherwise. The same create tried again after it committed (its
// answer lost) succeeds rather than report the address lost.
func TestCreateFromProposal(t *testing.T) {
	t.Parallel()
	_, cli := etcdtest.Fresh(t)
	ctx := t.Context()
	s := store.New(cli, havipcache.New(cli, etcdtest.Quiet), ownercache.New(cli, etcdtest.Quiet), etcdtest.Quiet)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	subnet := ids.New(ids.Subnet)
	put, err := cli.Put(ctx, records.SubnetKey(subnet), "{}")
	if err != nil {
		t.Fatal(err)
	}
	rev := put.Header.Revision
	vip := netip.MustParseAddr("10.0.0.9")
	create := func(subnetRev int64) (records.HaVip, error) {
		h := records.HaVip{ID: ids.New(ids.HaVip), Account: "acct", Name: "h", VpcID: ids.New(ids.Vpc), SubnetID: subnet, VIP: vip, Created: time.Now().UTC()}
		return h, s.Create(ctx, h, ipalloc.Allocation{Pool: subnet, Addr: vip, Record: ipalloc.Record{Account: "acct"}}, subnetRev, "")
	}
	exists := func(key string) bool {
		r, err := cli.Get(ctx, key, clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return r.Count > 0
	}
	if h, err := create(rev + 1); !errors.Is(err, store.ErrReservationLost) || exists(records.HaVipKey(h.ID)) || exists(records.AddressKey(subnet, vip)) {
		t.Fatalf("create guarded by another subnet revision: %v (HAVIP or address written?)", err)
	}
	h, err := create(rev)
	if err != nil || !exists(records.HaVipKey(h.ID)) || !exists(records.AddressKey(subnet, vip)) {
		t.Fatalf("create: %v", err)
	}
	if err := s.Create(ctx, h, ipalloc.Allocation{Pool: subnet, Addr: vip, Record: ipalloc.Record{Account: "acct"}}, rev, ""); err != nil {
		t.Fatalf("the same create again, after it committed: %v, want success", err)
	}
	if h2, err := create(rev); !errors.Is(err, store.ErrReservationLost) || exists(records.HaVipKey(h2.ID)) {
		t.Fatalf("second create of %s: %v", vip, err)
	}
	if _, err := cli.Delete(ctx, records.SubnetKey(subnet)); err != nil {
		t.Fatal(err)
	}
	vip = netip.MustParseAddr("10.0.0.10")
	if h3, err := create(rev); !errors.Is(err, store.ErrReservationLost) || exists(records.HaVipKey(h3.ID)) || exists(records.AddressKey(subnet, vip)) {
		t.Fatalf("create in a deleted subnet: %v", err)
	}
}
