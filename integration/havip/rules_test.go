package havip_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/records"
)

// state is what an account sees: its HAVIPs and its subnets' allocations.
func state(t *testing.T, c clients, account string, subnets ...string) []any {
	t.Helper()
	ctx := as(account)
	out := []any{etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{Limit: 100}))}
	for _, s := range subnets {
		out = append(out,
			etcdtest.Must[*ipamv1.DescribeSubnetsResponse](t)(c.ipam.DescribeSubnets(ctx, &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{s}})),
			etcdtest.Must[*ipamv1.DescribePrivateIpAddressesResponse](t)(c.ipam.DescribePrivateIpAddresses(ctx, &ipamv1.DescribePrivateIpAddressesRequest{SubnetId: s, Limit: 100})))
	}
	return out
}

// TestRefusals: each rule has its own error, and a refused request changes nothing, leaks no
// address.
func TestRefusals(t *testing.T) {
	t.Parallel()
	c := replica(t)
	account, other := unique("acct-hv-rules"), unique("acct-hv-other")
	ctx := as(account)
	n := buildNet(t, c, account, "10.0.0.0/24")
	full := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.ipam.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: n.vpc, SubnetName: "full", CidrBlock: "10.0.9.0/29"})).GetSubnet().GetSubnetId()
	for range 5 {
		etcdtest.Must[*ipamv1.AllocatePrivateIpAddressResponse](t)(c.ipam.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: full}))
	}
	hv := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "hv", ClientToken: "tok-1", HavipAssociationSet: enis(n.eni1)})).GetHavip()
	bound := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "with-eip"})).GetHavip()
	// An EIP binding as eipd records it (the EIP service is its own issue; the guard is here).
	cli := etcdtest.Client(t, etcdEndpoint)
	if _, err := cli.Put(context.Background(), records.HaVipAddresses+bound.GetHavipId(), `{"address_id":"eip-aaaaaaaa","address_ip":"203.0.113.7"}`); err != nil {
		t.Fatal(err)
	}
	on := buildNet(t, c, other, "10.0.0.0/24")
	etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(as(other), &havipv1.CreateHaVipRequest{VpcId: on.vpc, SubnetId: on.subnet, HavipName: "theirs"}))
	keepalivedConfig := func(iface string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := c.havip.DescribeHaVipKeepalivedConfig(ctx, &havipv1.DescribeHaVipKeepalivedConfigRequest{HavipId: hv.GetHavipId(), Interface: iface})
			return err
		}
	}
	create := func(req *havipv1.CreateHaVipRequest) func(context.Context) error {
		return func(ctx context.Context) error {
			if req.VpcId == "" {
				req.VpcId = n.vpc
			}
			if req.SubnetId == "" {
				req.SubnetId = n.subnet
			}
			if req.HavipName == "" {
				req.HavipName = "h"
			}
			_, err := c.havip.CreateHaVip(ctx, req)
			return err
		}
	}
	associate := func(id string, a []*havipv1.HaVipAssociation) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := c.havip.AssociateHaVipInstance(ctx, &havipv1.AssociateHaVipInstanceRequest{HavipId: id, HavipAssociationSet: a})
			return err
		}
	}
	eleven := make([]string, 0, 11)
	for range 11 {
		eleven = append(eleven, n.eni1)
	}
	long := strings.Repeat("n", 61)
	cases := []struct {
		name   string
		ctx    context.Context
		call   func(context.Context) error
		code   codes.Code
		reason string
	}{
		{"create without account", context.Background(), create(&havipv1.CreateHaVipRequest{}), codes.Unauthenticated, apierr.ReasonAuthFailure},
		{"create empty name", nil, create(&havipv1.CreateHaVipRequest{HavipName: " "}), codes.InvalidArgument, apierr.ReasonEmpty},
		{"create name too long", nil, create(&havipv1.CreateHaVipRequest{HavipName: long}), codes.InvalidArgument, apierr.ReasonTooLong},
		{"create malformed vpc", nil, create(&havipv1.CreateHaVipRequest{VpcId: "vpc-1"}), codes.InvalidArgument, apierr.ReasonMalformed},
		{"create subnet of another vpc", nil, create(&havipv1.CreateHaVipRequest{VpcId: n.otherVpc}), codes.InvalidArgument, apierr.ReasonVpcMismatch},
		{"create unknown subnet", nil, create(&havipv1.CreateHaVipRequest{SubnetId: "subnet-00000000"}), codes.NotFound, apierr.ReasonResourceNotFound},
		{"create vip outside subnet", nil, create(&havipv1.CreateHaVipRequest{Vip: "10.0.1.9"}), codes.InvalidArgument, apierr.ReasonRange},
		{"create vip is the gateway", nil, create(&havipv1.CreateHaVipRequest{Vip: "10.0.0.1"}), codes.InvalidArgument, apierr.ReasonReserved},
		{"create vip is the broadcast", nil, create(&havipv1.CreateHaVipRequest{Vip: "10.0.0.255"}), codes.InvalidArgument, apierr.ReasonReserved},
		{"create vip taken", nil, create(&havipv1.CreateHaVipRequest{Vip: n.primaryIP1}), codes.AlreadyExists, apierr.ReasonOccupied},
		{"create vip ipv6", nil, create(&havipv1.CreateHaVipRequest{Vip: "fd00::1"}), codes.InvalidArgument, apierr.ReasonNotIPv4},
		{"create vip malformed", nil, create(&havipv1.CreateHaVipRequest{Vip: "10.0.0"}), codes.InvalidArgument, apierr.ReasonMalformed},
		{"create in full subnet", nil, create(&havipv1.CreateHaVipRequest{SubnetId: full}), codes.ResourceExhausted, apierr.ReasonResourceInsufficient},
		{"create token reused for another request", nil, create(&havipv1.CreateHaVipRequest{HavipName: "different", ClientToken: "tok-1"}), codes.InvalidArgument, apierr.ReasonIdempotentParameterChange},
		{"create with a bad range", nil, create(&havipv1.CreateHaVipRequest{HavipAssociationSet: enis(n.primary1)}), codes.FailedPrecondition, apierr.ReasonPrimaryEni},
		{"range over 10", nil, associate(hv.GetHavipId(), enis(eleven...)), codes.InvalidArgument, apierr.ReasonLimitExceeded},
		{"range mixing CVMs and ENIs", nil, associate(hv.GetHavipId(), cvms(n.cvm2)), codes.InvalidArgument, apierr.ReasonMixedInstanceType},
		{"range with a detached ENI", nil, associate(hv.GetHavipId(), enis(n.detachedEni)), codes.FailedPrecondition, apierr.ReasonNotAttached},
		{"range with a primary ENI", nil, associate(hv.GetHavipId(), enis(n.primary2)), codes.FailedPrecondition, apierr.ReasonPrimaryEni},
		{"range with an ENI of another VPC", nil, associate(hv.GetHavipId(), enis(n.otherEni)), codes.InvalidArgument, apierr.ReasonVpcMismatch},
		{"range with a CVM of another VPC", nil, associate(bound.GetHavipId(), cvms(n.otherCvm)), codes.InvalidArgument, apierr.ReasonVpcMismatch},
		{"range entry already there", nil, associate(hv.GetHavipId(), enis(n.eni1)), codes.InvalidArgument, apierr.ReasonDuplicate},
		{"range entry twice in the request", nil, associate(bound.GetHavipId(), enis(n.eni2, n.eni2)), codes.InvalidArgument, apierr.ReasonDuplicate},
		{"range with an unknown ENI", nil, associate(hv.GetHavipId(), enis("eni-00000000")), codes.NotFound, apierr.ReasonResourceNotFound},
		{"range with a bad type", nil, associate(hv.GetHavipId(), []*havipv1.HaVipAssociation{{InstanceId: n.cvm1, InstanceType: "VM"}}), codes.InvalidArgument, apierr.ReasonInstanceType},
		{"range with an id of the wrong kind", nil, associate(hv.GetHavipId(), []*havipv1.HaVipAssociation{{InstanceId: n.cvm1, InstanceType: "ENI"}}), codes.InvalidArgument, apierr.ReasonMalformed},
		{"range empty", nil, associate(hv.GetHavipId(), nil), codes.InvalidArgument, apierr.ReasonEmpty},
		{"disassociate what is not there", nil, func(ctx context.Context) error {
			_, err := c.havip.DisassociateHaVipInstance(ctx, &havipv1.DisassociateHaVipInstanceRequest{HavipId: hv.GetHavipId(), HavipAssociationSet: enis(n.eni2)})
			return err
		}, codes.FailedPrecondition, apierr.ReasonNotAssociated},
		{"keepalived config with one instance", nil, func(ctx context.Context) error {
			_, err := c.havip.DescribeHaVipKeepalivedConfig(ctx, &havipv1.DescribeHaVipKeepalivedConfigRequest{HavipId: hv.GetHavipId()})
			return err
		}, codes.FailedPrecondition, apierr.ReasonNotAssociated},
		{"keepalived config with an injected interface", nil, keepalivedConfig("eth0 { notify_master /tmp/x.sh"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"keepalived config with a newline in the interface", nil, keepalivedConfig("eth0\nnotify_master /tmp/x.sh"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"keepalived config with a 16-byte interface", nil, keepalivedConfig("abcdefghijklmnop"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"keepalived config with an alias label", nil, keepalivedConfig("eth0:1"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"keepalived config with interface ..", nil, keepalivedConfig(".."), codes.InvalidArgument, apierr.ReasonMalformed},
		{"modify nothing", nil, func(ctx context.Context) error {
			_, err := c.havip.ModifyHaVipAttribute(ctx, &havipv1.ModifyHaVipAttributeRequest{HavipId: hv.GetHavipId()})
			return err
		}, codes.InvalidArgument, apierr.ReasonEmpty},
		{"modify name too long", nil, func(ctx context.Context) error {
			_, err := c.havip.ModifyHaVipAttribute(ctx, &havipv1.ModifyHaVipAttributeRequest{HavipId: hv.GetHavipId(), HavipName: &long})
			return err
		}, codes.InvalidArgument, apierr.ReasonTooLong},
		{"delete with an EIP bound", nil, func(ctx context.Context) error {
			_, err := c.havip.DeleteHaVip(ctx, &havipv1.DeleteHaVipRequest{HavipId: bound.GetHavipId()})
			return err
		}, codes.FailedPrecondition, apierr.ReasonBindEIP},
		{"delete unknown", nil, func(ctx context.Context) error {
			_, err := c.havip.DeleteHaVip(ctx, &havipv1.DeleteHaVipRequest{HavipId: "havip-00000000"})
			return err
		}, codes.NotFound, apierr.ReasonResourceNotFound},
		{"delete another account's", as(other), func(ctx context.Context) error {
			_, err := c.havip.DeleteHaVip(ctx, &havipv1.DeleteHaVipRequest{HavipId: hv.GetHavipId()})
			return err
		}, codes.NotFound, apierr.ReasonResourceNotFound},
		{"modify another account's", as(other), func(ctx context.Context) error {
			name := "mine"
			_, err := c.havip.ModifyHaVipAttribute(ctx, &havipv1.ModifyHaVipAttributeRequest{HavipId: hv.GetHavipId(), HavipName: &name})
			return err
		}, codes.NotFound, apierr.ReasonResourceNotFound},
		{"associate another account's", as(other), associate(hv.GetHavipId(), enis(n.eni2)), codes.NotFound, apierr.ReasonResourceNotFound},
		{"describe another account's", as(other), func(ctx context.Context) error {
			_, err := c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{hv.GetHavipId()}})
			return err
		}, codes.NotFound, apierr.ReasonResourceNotFound},
		{"describe unknown filter", nil, func(ctx context.Context) error {
			_, err := c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{Filters: []*havipv1.Filter{{Name: "state", Values: []string{"BIND"}}}})
			return err
		}, codes.InvalidArgument, apierr.ReasonFilterInvalidKey},
		{"describe ids and filters", nil, func(ctx context.Context) error {
			_, err := c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{hv.GetHavipId()}, Filters: []*havipv1.Filter{{Name: "vip", Values: []string{"10.0.0.9"}}}})
			return err
		}, codes.InvalidArgument, apierr.ReasonCoexist},
		{"describe limit over 100", nil, func(ctx context.Context) error {
			_, err := c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{Limit: 101})
			return err
		}, codes.InvalidArgument, apierr.ReasonLimitExceeded},
	}
	before, beforeOther := state(t, c, account, n.subnet, full), state(t, c, other, on.subnet)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cctx := tc.ctx
			if cctx == nil {
				cctx = ctx
			}
			err := tc.call(cctx)
			if status.Code(err) != tc.code || apierr.Reason(err) != tc.reason {
				t.Fatalf("got %v (reason %q), want %v %s", err, apierr.Reason(err), tc.code, tc.reason)
			}
			if diff := cmp.Diff(before, state(t, c, account, n.subnet, full), protocmp.Transform()); diff != "" {
				t.Errorf("state changed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(beforeOther, state(t, c, other, on.subnet), protocmp.Transform()); diff != "" {
				t.Errorf("other account's state changed (-want +got):\n%s", diff)
			}
		})
	}
}
