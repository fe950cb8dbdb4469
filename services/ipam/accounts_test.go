package ipam_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
)

// refusal is what a caller learns from an error: its code, its reason and its message, with
// the subnet ID it names replaced by <subnet>.
type refusal struct {
	Code    codes.Code
	Reason  string
	Message string
}

func refusalOf(err error, subnetID string) refusal {
	st, _ := status.FromError(err)
	return refusal{Code: st.Code(), Reason: apierr.Reason(err), Message: strings.ReplaceAll(st.Message(), subnetID, "<subnet>")}
}

// TestOtherAccountsSubnetIsNotFound: every address call on another account's subnet is
// answered exactly as the same call on a subnet that does not exist (NotFound,
// ResourceNotFound, the same message), even with that account's real reservation token and
// its addresses, and changes nothing: the owner still commits its reservation afterwards.
func TestOtherAccountsSubnetIsNotFound(t *testing.T) {
	t.Parallel()
	c, _ := replica(t)
	owner, intruder := unique("acct-subnet-owner"), unique("acct-subnet-intruder")
	theirs := newSubnet(t, c, owner, "10.0.0.0/16", "10.0.0.0/24")
	const missing = "subnet-00000000"
	reservation := etcdtest.Must[*ipamv1.AllocatePrivateIpAddressResponse](t)(c.AllocatePrivateIpAddress(as(owner),
		&ipamv1.AllocatePrivateIpAddressRequest{SubnetId: theirs, IpAddress: "10.0.0.10", ReservationTtlSeconds: 600})).GetAddress()
	held := etcdtest.Must[*ipamv1.AllocatePrivateIpAddressResponse](t)(c.AllocatePrivateIpAddress(as(owner),
		&ipamv1.AllocatePrivateIpAddressRequest{SubnetId: theirs, IpAddress: "10.0.0.11"})).GetAddress()
	// The intruder has a subnet of its own, so the calls are not refused for want of any.
	newSubnet(t, c, intruder, "10.0.0.0/16", "10.0.0.0/24")

	cases := []struct {
		name string
		call func(ctx context.Context, subnet string) error
	}{
		{"commit their reservation with its token", func(ctx context.Context, subnet string) error {
			_, err := c.CommitPrivateIpAddress(ctx, &ipamv1.CommitPrivateIpAddressRequest{SubnetId: subnet, IpAddress: reservation.GetIpAddress(), ReservationToken: reservation.GetReservationToken()})
			return err
		}},
		{"commit a free address", func(ctx context.Context, subnet string) error {
			_, err := c.CommitPrivateIpAddress(ctx, &ipamv1.CommitPrivateIpAddressRequest{SubnetId: subnet, IpAddress: "10.0.0.12", ReservationToken: "token"})
			return err
		}},
		{"commit an address outside the subnet", func(ctx context.Context, subnet string) error {
			_, err := c.CommitPrivateIpAddress(ctx, &ipamv1.CommitPrivateIpAddressRequest{SubnetId: subnet, IpAddress: "10.9.0.12", ReservationToken: "token"})
			return err
		}},
		{"allocate any address", func(ctx context.Context, s string) error { return allocate(c, s, "", 0)(ctx) }},
		{"allocate their held address", func(ctx context.Context, s string) error { return allocate(c, s, held.GetIpAddress(), 0)(ctx) }},
		{"allocate a free address", func(ctx context.Context, s string) error { return allocate(c, s, "10.0.0.12", 0)(ctx) }},
		{"reserve an address", func(ctx context.Context, s string) error { return allocate(c, s, "", 60)(ctx) }},
		{"allocate several addresses", func(ctx context.Context, subnet string) error {
			_, err := c.AllocatePrivateIpAddresses(ctx, &ipamv1.AllocatePrivateIpAddressesRequest{SubnetId: subnet, Owners: []string{"", ""}})
			return err
		}},
		{"propose addresses", func(ctx context.Context, subnet string) error {
			_, err := c.ProposePrivateIpAddresses(ctx, &ipamv1.ProposePrivateIpAddressesRequest{SubnetId: subnet, Owners: []string{"", ""}, Extra: 3})
			return err
		}},
		{"release their held address", func(ctx context.Context, s string) error { return release(c, s, held.GetIpAddress())(ctx) }},
		{"release their reservation", func(ctx context.Context, s string) error { return release(c, s, reservation.GetIpAddress())(ctx) }},
		{"release a free address", func(ctx context.Context, s string) error { return release(c, s, "10.0.0.12")(ctx) }},
		{"describe the addresses", func(ctx context.Context, subnet string) error {
			_, err := c.DescribePrivateIpAddresses(ctx, &ipamv1.DescribePrivateIpAddressesRequest{SubnetId: subnet})
			return err
		}},
	}
	before := snapshot(t, c, owner)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := refusalOf(tc.call(as(intruder), missing), missing)
			if want.Code != codes.NotFound || want.Reason != apierr.ReasonResourceNotFound {
				t.Fatalf("on a subnet that does not exist: %+v, want NotFound %s", want, apierr.ReasonResourceNotFound)
			}
			got := refusalOf(tc.call(as(intruder), theirs), theirs)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("on another account's subnet, the answer differs from a missing subnet's (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, snapshot(t, c, owner), protocmp.Transform()); diff != "" {
				t.Errorf("the owner's state changed (-want +got):\n%s", diff)
			}
		})
	}
	// The refusals took nothing from the owner: its reservation still commits with its token.
	committed := etcdtest.Must[*ipamv1.CommitPrivateIpAddressResponse](t)(c.CommitPrivateIpAddress(as(owner),
		&ipamv1.CommitPrivateIpAddressRequest{SubnetId: theirs, IpAddress: reservation.GetIpAddress(), ReservationToken: reservation.GetReservationToken(), Owner: "mine"})).GetAddress()
	if committed.GetReserved() || committed.GetOwner() != "mine" {
		t.Errorf("the owner's commit: %v, want a lasting allocation owned by mine", committed)
	}
}
