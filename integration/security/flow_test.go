package security_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/authz"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/eip"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

// TestTenantFlowsThroughServices: a tenant call that makes the service call another in process
// (havipd reserving its VIP from ipamd, binding an EIP) acts for the same account whatever
// credentials the caller came with: an API key from a client or an agent identity, or an
// account asserted by a gateway. The inner call is the service's own, not the caller's.
func TestTenantFlowsThroughServices(t *testing.T) {
	key := apikey.New()
	keys, err := apikey.Parse(strings.NewReader(apikey.Line("acct-flow", key)))
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := etcdtest.ServeKeys(t, etcdEndpoint, keys, ipam.Module, service.Must(havip.NewModule(havip.Config{})),
		service.Must(arpbroker.NewModule(arpbroker.Config{})), service.Must(eip.NewModule(eip.Config{})))
	withKey := metadata.AppendToOutgoingContext(context.Background(), authz.AuthorizationKey, "Bearer "+key)
	for _, tc := range []struct {
		name string
		id   identity.ID
		ctx  context.Context
	}{
		{"a client with an API key", mtlstest.Client, withKey},
		{"an agent with an API key", mtlstest.Agent("host-flow"), withKey},
		{"a gateway asserting the account", mtlstest.Gateway, tenant.Outgoing(context.Background(), "acct-flow")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := etcdtest.DialAs(t, conn.Target(), tc.id)
			ctx := tc.ctx
			ipamc, havipc, eipc := ipamv1.NewIpamServiceClient(cc), havipv1.NewHaVipServiceClient(cc), eipv1.NewEipServiceClient(cc)
			vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(ipamc.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
			subnet := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(ipamc.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.1.0/24"})).GetSubnet().GetSubnetId()
			hv := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(havipc.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: subnet, HavipName: "h"})).GetHavip()
			addr := etcdtest.Must[*eipv1.AllocateAddressesResponse](t)(eipc.AllocateAddresses(ctx, &eipv1.AllocateAddressesRequest{AddressCount: 1})).GetAddressSet()[0]
			bound := etcdtest.Must[*havipv1.HaVipAssociateAddressIpResponse](t)(havipc.HaVipAssociateAddressIp(ctx, &havipv1.HaVipAssociateAddressIpRequest{HavipId: hv.GetHavipId(), AddressIp: addr.GetAddressIp()})).GetHavip()
			if bound.GetAddressIp() != addr.GetAddressIp() {
				t.Errorf("bound: %v", bound)
			}
			// The account's own: the operator sees it in acct-flow.
			seen := etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(havipv1.NewHaVipServiceClient(conn).DescribeHaVips(tenant.Outgoing(context.Background(), "acct-flow"),
				&havipv1.DescribeHaVipsRequest{HavipIds: []string{hv.GetHavipId()}}))
			if len(seen.GetHavipSet()) != 1 {
				t.Errorf("the HAVIP is not acct-flow's: %v", seen)
			}
		})
	}
}
