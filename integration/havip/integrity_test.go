package havip_test

import (
	"context"
	"net/netip"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/records"
)

// A HAVIP's VIP is freed only by DeleteHaVip: releasing it through IPAM is refused, so no ENI
// can be handed the address while the HAVIP lives (issue 12, defect 1).
func TestVIPIsNotReleasableThroughIPAM(t *testing.T) {
	t.Parallel()
	c := replica(t)
	account := unique("vip-release")
	ctx := as(account)
	n := buildNet(t, c, account, "10.0.0.0/28")
	hv := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "hv"})).GetHavip()
	_, err := c.ipam.ReleasePrivateIpAddress(ctx, &ipamv1.ReleasePrivateIpAddressRequest{SubnetId: n.subnet, IpAddress: hv.GetVip()})
	if status.Code(err) != codes.FailedPrecondition || apierr.Reason(err) != apierr.ReasonAddressInUse {
		t.Fatalf("release of the VIP: %v, want FailedPrecondition %s", err, apierr.ReasonAddressInUse)
	}
	// The VIP is still held: asking for it by address is refused as taken.
	_, err = c.ipam.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: n.subnet, IpAddress: hv.GetVip()})
	if apierr.Reason(err) != apierr.ReasonOccupied {
		t.Fatalf("allocating the VIP after the refused release: %v, want %s", err, apierr.ReasonOccupied)
	}
	etcdtest.Must[*havipv1.DeleteHaVipResponse](t)(c.havip.DeleteHaVip(ctx, &havipv1.DeleteHaVipRequest{HavipId: hv.GetHavipId()}))
	// Deleting the HAVIP freed it.
	etcdtest.Must[*ipamv1.AllocatePrivateIpAddressResponse](t)(c.ipam.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: n.subnet, IpAddress: hv.GetVip()}))
}

// DeleteHaVip deletes its VIP's address record only while the record is still the HAVIP's:
// an address that another holder has (however it came to) survives the delete.
func TestDeleteHaVipKeepsAnotherHoldersAddress(t *testing.T) {
	t.Parallel()
	c := replica(t)
	account := unique("vip-holder")
	ctx := as(account)
	n := buildNet(t, c, account, "10.0.0.0/28")
	hv := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "hv"})).GetHavip()
	cli := etcdtest.Client(t, etcdEndpoint)
	key := records.AddressKey(n.subnet, netip.MustParseAddr(hv.GetVip()))
	other := `{"owner":"` + n.eni2 + `","account":"` + account + `"}`
	if _, err := cli.Put(context.Background(), key, other); err != nil {
		t.Fatal(err)
	}
	etcdtest.Must[*havipv1.DeleteHaVipResponse](t)(c.havip.DeleteHaVip(ctx, &havipv1.DeleteHaVipRequest{HavipId: hv.GetHavipId()}))
	resp, err := cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != other {
		t.Fatalf("address record after the delete: %v, want the other holder's %s", resp.Kvs, other)
	}
	if _, err := cli.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
}
