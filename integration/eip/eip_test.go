package eip_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/eip"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

var etcdEndpoint string

func TestMain(m *testing.M) { os.Exit(etcdtest.Main(m, &etcdEndpoint)) }

type clients struct {
	tb     testing.TB
	conn   *grpc.ClientConn
	ipam   ipamv1.IpamServiceClient
	havip  havipv1.HaVipServiceClient
	eip    eipv1.EipServiceClient
	agents map[string]arpbrokerv1.ArpBrokerServiceClient // by host, each with its agent's certificate
	hostOf map[int64]string                              // session → host
}

// agent is the broker as the agent of host calls it.
func (c clients) agent(host string) arpbrokerv1.ArpBrokerServiceClient {
	a, ok := c.agents[host]
	if !ok {
		a = arpbrokerv1.NewArpBrokerServiceClient(etcdtest.DialAs(c.tb, c.conn.Target(), mtlstest.Agent(host)))
		c.agents[host] = a
	}
	return a
}

// suite runs the services in one process on the shared etcd, eipd with cfg; with the broker
// only for a test that does not run in parallel (all broker replicas on one etcd share one
// election).
func suite(t testing.TB, cfg eip.Config, modules ...service.Module) clients {
	base := []service.Module{ipam.Module, service.Must(havip.NewModule(havip.Config{})), service.Must(eip.NewModule(cfg))}
	conn, _ := etcdtest.Serve(t, etcdEndpoint, append(base, modules...)...)
	return clients{t, conn, ipamv1.NewIpamServiceClient(conn), havipv1.NewHaVipServiceClient(conn), eipv1.NewEipServiceClient(conn), map[string]arpbrokerv1.ArpBrokerServiceClient{}, map[int64]string{}}
}

type world struct {
	ctx          context.Context
	vpc, subnet  string
	eni          *ipamv1.NetworkInterface
	hv1, hv2     *havipv1.HaVip
	eip1, eip2   *eipv1.Address
	otherAccount context.Context
}

func build(t testing.TB, c clients) world {
	w := world{ctx: tenant.Outgoing(context.Background(), "acct-eip"+ids.New("")), otherAccount: tenant.Outgoing(context.Background(), "acct-eip-other"+ids.New(""))}
	w.vpc = etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.ipam.CreateVpc(w.ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	w.subnet = etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.ipam.CreateSubnet(w.ctx, &ipamv1.CreateSubnetRequest{VpcId: w.vpc, SubnetName: "s", CidrBlock: "10.0.0.0/24"})).GetSubnet().GetSubnetId()
	w.eni = etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.ipam.CreateInstance(w.ctx, &ipamv1.CreateInstanceRequest{InstanceName: "i", SubnetId: w.subnet, HostId: "host-9"})).GetPrimaryNetworkInterface()
	f := false
	mk := func() *havipv1.HaVip {
		return etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(w.ctx, &havipv1.CreateHaVipRequest{VpcId: w.vpc, SubnetId: w.subnet, HavipName: "h", CheckAssociate: &f})).GetHavip()
	}
	w.hv1, w.hv2 = mk(), mk()
	eips := etcdtest.Must[*eipv1.AllocateAddressesResponse](t)(c.eip.AllocateAddresses(w.ctx, &eipv1.AllocateAddressesRequest{AddressCount: 2, AddressName: "pub"})).GetAddressSet()
	w.eip1, w.eip2 = eips[0], eips[1]
	return w
}

func describe(t *testing.T, c clients, ctx context.Context, id string) *eipv1.Address {
	t.Helper()
	return etcdtest.Must[*eipv1.DescribeAddressesResponse](t)(c.eip.DescribeAddresses(ctx, &eipv1.DescribeAddressesRequest{AddressIds: []string{id}})).GetAddressSet()[0]
}

// TestHaVipBindingFollowsOwner: an EIP bound to a HAVIP maps to nothing until an ENI owns the
// HAVIP, then to that ENI and its host; the HAVIP shows the EIP; unbinding frees both sides.
func TestHaVipBindingFollowsOwner(t *testing.T) {
	c := suite(t, eip.Config{}, service.Must(arpbroker.NewModule(arpbroker.Config{})))
	w := build(t, c)
	if w.eip1.GetAddressStatus() != "UNBIND" || w.eip1.GetAddressIp() == "" {
		t.Fatalf("new EIP: %v", w.eip1)
	}
	hv := etcdtest.Must[*havipv1.HaVipAssociateAddressIpResponse](t)(c.havip.HaVipAssociateAddressIp(w.ctx, &havipv1.HaVipAssociateAddressIpRequest{HavipId: w.hv1.GetHavipId(), AddressIp: w.eip1.GetAddressIp()})).GetHavip()
	if hv.GetAddressIp() != w.eip1.GetAddressIp() {
		t.Errorf("HAVIP after bind: %v", hv)
	}
	a := describe(t, c, w.ctx, w.eip1.GetAddressId())
	if a.GetAddressStatus() != "BIND" || a.GetHavipId() != w.hv1.GetHavipId() || a.GetReachesServer() || a.GetNetworkInterfaceId() != "" || a.GetPrivateAddressIp() != w.hv1.GetVip() {
		t.Errorf("EIP bound to an unowned HAVIP: %v", a)
	}
	sess := etcdtest.Must[*arpbrokerv1.OpenSessionResponse](t)(c.agent("host-9").OpenSession(context.Background(), &arpbrokerv1.OpenSessionRequest{AgentId: "a", HostId: "host-9", TtlSeconds: 30})).GetSessionId()
	report := &arpbrokerv1.ReportArpAnnouncementRequest{AgentId: "a", SessionId: sess, NetworkInterfaceId: w.eni.GetNetworkInterfaceId(), EthernetSourceMac: w.eni.GetMacAddress(),
		SenderMac: w.eni.GetMacAddress(), SenderIp: w.hv1.GetVip(), TargetIp: w.hv1.GetVip(), Operation: arpbrokerv1.ArpOperation_ARP_OPERATION_REQUEST}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := c.agent("host-9").ReportArpAnnouncement(context.Background(), report)
		if err == nil && r.GetResult() == arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED {
			break
		}
		if err == nil {
			t.Fatalf("claim: %v", r)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no broker leader: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the broker's election
	}
	a = describe(t, c, w.ctx, w.eip1.GetAddressId())
	if !a.GetReachesServer() || a.GetNetworkInterfaceId() != w.eni.GetNetworkInterfaceId() || a.GetHostId() != "host-9" {
		t.Errorf("EIP after the owner change: %v", a)
	}
	etcdtest.Must[*havipv1.HaVipDisassociateAddressIpResponse](t)(c.havip.HaVipDisassociateAddressIp(w.ctx, &havipv1.HaVipDisassociateAddressIpRequest{HavipId: w.hv1.GetHavipId()}))
	if a := describe(t, c, w.ctx, w.eip1.GetAddressId()); a.GetAddressStatus() != "UNBIND" || a.GetHavipId() != "" {
		t.Errorf("after unbind: %v", a)
	}
	etcdtest.Must[*eipv1.ReleaseAddressesResponse](t)(c.eip.ReleaseAddresses(w.ctx, &eipv1.ReleaseAddressesRequest{AddressIds: []string{w.eip1.GetAddressId()}}))

	// DisassociateAddress unbinds a HAVIP-bound EIP too, both sides.
	etcdtest.Must[*havipv1.HaVipAssociateAddressIpResponse](t)(c.havip.HaVipAssociateAddressIp(w.ctx, &havipv1.HaVipAssociateAddressIpRequest{HavipId: w.hv2.GetHavipId(), AddressIp: w.eip2.GetAddressIp()}))
	if a := etcdtest.Must[*eipv1.DisassociateAddressResponse](t)(c.eip.DisassociateAddress(w.ctx, &eipv1.DisassociateAddressRequest{AddressId: w.eip2.GetAddressId()})).GetAddress(); a.GetAddressStatus() != "UNBIND" {
		t.Errorf("after DisassociateAddress: %v", a)
	}
	hv2 := etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(c.havip.DescribeHaVips(w.ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{w.hv2.GetHavipId()}})).GetHavipSet()[0]
	if hv2.GetAddressIp() != "" {
		t.Errorf("the HAVIP still shows the EIP: %v", hv2)
	}
}

// state is everything both accounts can see of EIPs and HAVIPs, as text.
func state(t *testing.T, c clients, accounts ...context.Context) string {
	t.Helper()
	var b strings.Builder
	for _, ctx := range accounts {
		for _, a := range etcdtest.Must[*eipv1.DescribeAddressesResponse](t)(c.eip.DescribeAddresses(ctx, &eipv1.DescribeAddressesRequest{Limit: 100})).GetAddressSet() {
			b.WriteString(prototext.Format(a))
		}
		for _, h := range etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{Limit: 100})).GetHavipSet() {
			b.WriteString(prototext.Format(h))
		}
	}
	return b.String()
}

// TestRefusals: each rule of allocating, binding, unbinding, renaming and releasing, with the
// code and reason of its refusal, and both accounts' state unchanged afterwards.
func TestRefusals(t *testing.T) {
	t.Parallel()
	c := suite(t, eip.Config{})
	w := build(t, c)
	etcdtest.Must[*havipv1.HaVipAssociateAddressIpResponse](t)(c.havip.HaVipAssociateAddressIp(w.ctx, &havipv1.HaVipAssociateAddressIpRequest{HavipId: w.hv1.GetHavipId(), AddressIp: w.eip1.GetAddressIp()}))
	eip3 := etcdtest.Must[*eipv1.AllocateAddressesResponse](t)(c.eip.AllocateAddresses(w.ctx, &eipv1.AllocateAddressesRequest{})).GetAddressSet()[0]
	etcdtest.Must[*eipv1.AssociateAddressResponse](t)(c.eip.AssociateAddress(w.ctx, &eipv1.AssociateAddressRequest{AddressId: eip3.GetAddressId(), NetworkInterfaceId: w.eni.GetNetworkInterfaceId()}))
	// The other account has an EIP and an ENI of its own.
	otherEip := etcdtest.Must[*eipv1.AllocateAddressesResponse](t)(c.eip.AllocateAddresses(w.otherAccount, &eipv1.AllocateAddressesRequest{})).GetAddressSet()[0]
	ovpc := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.ipam.CreateVpc(w.otherAccount, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	osub := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.ipam.CreateSubnet(w.otherAccount, &ipamv1.CreateSubnetRequest{VpcId: ovpc, SubnetName: "s", CidrBlock: "10.0.0.0/24"})).GetSubnet().GetSubnetId()
	otherENI := etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.ipam.CreateInstance(w.otherAccount, &ipamv1.CreateInstanceRequest{InstanceName: "i", SubnetId: osub, HostId: "host-1"})).GetPrimaryNetworkInterface()

	before := state(t, c, w.ctx, w.otherAccount)
	bind := func(ctx context.Context, havip, ip string) error {
		_, err := c.havip.HaVipAssociateAddressIp(ctx, &havipv1.HaVipAssociateAddressIpRequest{HavipId: havip, AddressIp: ip})
		return err
	}
	associate := func(ctx context.Context, id, eni, ip string) error {
		_, err := c.eip.AssociateAddress(ctx, &eipv1.AssociateAddressRequest{AddressId: id, NetworkInterfaceId: eni, PrivateIpAddress: ip})
		return err
	}
	release := func(ctx context.Context, ids ...string) error {
		_, err := c.eip.ReleaseAddresses(ctx, &eipv1.ReleaseAddressesRequest{AddressIds: ids})
		return err
	}
	rename := func(ctx context.Context, id, name string) error {
		_, err := c.eip.ModifyAddressAttribute(ctx, &eipv1.ModifyAddressAttributeRequest{AddressId: id, AddressName: name})
		return err
	}
	disassociate := func(ctx context.Context, id string) error {
		_, err := c.eip.DisassociateAddress(ctx, &eipv1.DisassociateAddressRequest{AddressId: id})
		return err
	}
	describe := func(req *eipv1.DescribeAddressesRequest) error {
		_, err := c.eip.DescribeAddresses(w.ctx, req)
		return err
	}
	allocate := func(req *eipv1.AllocateAddressesRequest) error {
		_, err := c.eip.AllocateAddresses(w.ctx, req)
		return err
	}
	eniID := w.eni.GetNetworkInterfaceId()
	long := strings.Repeat("n", 61)
	cases := []struct {
		name   string
		err    error
		code   codes.Code
		reason string
	}{
		// HaVipAssociateAddressIp / HaVipDisassociateAddressIp / DeleteHaVip
		{"bind an EIP bound to a HAVIP", bind(w.ctx, w.hv2.GetHavipId(), w.eip1.GetAddressIp()), codes.FailedPrecondition, apierr.ReasonAddressBound},
		{"bind an EIP bound to an ENI", bind(w.ctx, w.hv2.GetHavipId(), eip3.GetAddressIp()), codes.FailedPrecondition, apierr.ReasonAddressBound},
		{"bind to a HAVIP that has an EIP", bind(w.ctx, w.hv1.GetHavipId(), w.eip2.GetAddressIp()), codes.FailedPrecondition, apierr.ReasonHaVipBound},
		{"bind an unknown EIP", bind(w.ctx, w.hv2.GetHavipId(), "198.51.100.1"), codes.NotFound, apierr.ReasonResourceNotFound},
		{"bind a malformed IP", bind(w.ctx, w.hv2.GetHavipId(), "203.0.113"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"bind to a malformed HAVIP ID", bind(w.ctx, "havip-X", w.eip2.GetAddressIp()), codes.InvalidArgument, apierr.ReasonMalformed},
		{"bind another account's EIP", bind(w.ctx, w.hv2.GetHavipId(), otherEip.GetAddressIp()), codes.NotFound, apierr.ReasonResourceNotFound},
		{"another account binds to my HAVIP", bind(w.otherAccount, w.hv2.GetHavipId(), otherEip.GetAddressIp()), codes.NotFound, apierr.ReasonResourceNotFound},
		{"another account binds my EIP", bind(w.otherAccount, w.hv2.GetHavipId(), w.eip2.GetAddressIp()), codes.NotFound, apierr.ReasonResourceNotFound},
		{"unbind a HAVIP without EIP", func() error {
			_, err := c.havip.HaVipDisassociateAddressIp(w.ctx, &havipv1.HaVipDisassociateAddressIpRequest{HavipId: w.hv2.GetHavipId()})
			return err
		}(), codes.FailedPrecondition, apierr.ReasonAddressNotBound},
		{"another account unbinds my HAVIP", func() error {
			_, err := c.havip.HaVipDisassociateAddressIp(w.otherAccount, &havipv1.HaVipDisassociateAddressIpRequest{HavipId: w.hv1.GetHavipId()})
			return err
		}(), codes.NotFound, apierr.ReasonResourceNotFound},
		{"delete a HAVIP with an EIP", func() error {
			_, err := c.havip.DeleteHaVip(w.ctx, &havipv1.DeleteHaVipRequest{HavipId: w.hv1.GetHavipId()})
			return err
		}(), codes.FailedPrecondition, apierr.ReasonBindEIP},
		// AssociateAddress / DisassociateAddress
		{"associate a bound EIP", associate(w.ctx, w.eip1.GetAddressId(), eniID, ""), codes.FailedPrecondition, apierr.ReasonAddressBound},
		{"associate to an IP that has an EIP", associate(w.ctx, w.eip2.GetAddressId(), eniID, ""), codes.FailedPrecondition, apierr.ReasonAddressBound},
		{"associate to an IP not of the ENI", associate(w.ctx, w.eip2.GetAddressId(), eniID, "10.0.0.250"), codes.InvalidArgument, apierr.ReasonRange},
		{"associate to a malformed IP", associate(w.ctx, w.eip2.GetAddressId(), eniID, "10.0.0"), codes.InvalidArgument, apierr.ReasonMalformed},
		{"associate to an unknown ENI", associate(w.ctx, w.eip2.GetAddressId(), "eni-00000000", ""), codes.NotFound, apierr.ReasonResourceNotFound},
		{"associate to another account's ENI", associate(w.ctx, w.eip2.GetAddressId(), otherENI.GetNetworkInterfaceId(), ""), codes.NotFound, apierr.ReasonResourceNotFound},
		{"another account associates my EIP", associate(w.otherAccount, w.eip2.GetAddressId(), otherENI.GetNetworkInterfaceId(), ""), codes.NotFound, apierr.ReasonResourceNotFound},
		{"associate without ENI", associate(w.ctx, w.eip2.GetAddressId(), "", ""), codes.InvalidArgument, apierr.ReasonEmpty},
		{"associate a malformed EIP ID", associate(w.ctx, "eip-", eniID, ""), codes.InvalidArgument, apierr.ReasonMalformed},
		{"disassociate an unbound EIP", disassociate(w.ctx, w.eip2.GetAddressId()), codes.FailedPrecondition, apierr.ReasonAddressNotBound},
		{"another account disassociates my EIP", disassociate(w.otherAccount, eip3.GetAddressId()), codes.NotFound, apierr.ReasonResourceNotFound},
		// ReleaseAddresses
		{"release a HAVIP-bound EIP with a free one", release(w.ctx, w.eip2.GetAddressId(), w.eip1.GetAddressId()), codes.FailedPrecondition, apierr.ReasonAddressBound},
		{"release an ENI-bound EIP", release(w.ctx, eip3.GetAddressId()), codes.FailedPrecondition, apierr.ReasonAddressBound},
		{"another account releases my EIP", release(w.otherAccount, w.eip2.GetAddressId()), codes.NotFound, apierr.ReasonResourceNotFound},
		{"release mine with another account's", release(w.ctx, w.eip2.GetAddressId(), otherEip.GetAddressId()), codes.NotFound, apierr.ReasonResourceNotFound},
		{"release nothing", release(w.ctx), codes.InvalidArgument, apierr.ReasonEmpty},
		// ModifyAddressAttribute
		{"rename with a long name", rename(w.ctx, w.eip2.GetAddressId(), long), codes.InvalidArgument, apierr.ReasonTooLong},
		{"another account renames my EIP", rename(w.otherAccount, w.eip2.GetAddressId(), "x"), codes.NotFound, apierr.ReasonResourceNotFound},
		// AllocateAddresses / DescribeAddresses
		{"allocate 11", allocate(&eipv1.AllocateAddressesRequest{AddressCount: 11}), codes.InvalidArgument, apierr.ReasonRange},
		{"allocate with a long name", allocate(&eipv1.AllocateAddressesRequest{AddressName: long}), codes.InvalidArgument, apierr.ReasonTooLong},
		{"allocate with a long token", allocate(&eipv1.AllocateAddressesRequest{ClientToken: strings.Repeat("t", 65)}), codes.InvalidArgument, apierr.ReasonTooLong},
		{"describe with an unknown filter", describe(&eipv1.DescribeAddressesRequest{Filters: []*eipv1.Filter{{Name: "colour", Values: []string{"x"}}}}), codes.InvalidArgument, apierr.ReasonFilterInvalidKey},
		{"describe by IDs and filters", describe(&eipv1.DescribeAddressesRequest{AddressIds: []string{w.eip2.GetAddressId()}, Filters: []*eipv1.Filter{{Name: "address-name", Values: []string{"x"}}}}), codes.InvalidArgument, apierr.ReasonCoexist},
		{"describe another account's EIP", describe(&eipv1.DescribeAddressesRequest{AddressIds: []string{otherEip.GetAddressId()}}), codes.NotFound, apierr.ReasonResourceNotFound},
		{"describe with a limit over 100", describe(&eipv1.DescribeAddressesRequest{Limit: 101}), codes.InvalidArgument, apierr.ReasonLimitExceeded},
	}
	for _, tc := range cases {
		if status.Code(tc.err) != tc.code || apierr.Reason(tc.err) != tc.reason {
			t.Errorf("%s: %v (reason %q), want %v %s", tc.name, tc.err, apierr.Reason(tc.err), tc.code, tc.reason)
		}
	}
	if after := state(t, c, w.ctx, w.otherAccount); after != before {
		t.Errorf("the refusals changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The other account sees none of mine.
	if r := etcdtest.Must[*eipv1.DescribeAddressesResponse](t)(c.eip.DescribeAddresses(w.otherAccount, &eipv1.DescribeAddressesRequest{})); r.GetTotalCount() != 1 || r.GetAddressSet()[0].GetAddressId() != otherEip.GetAddressId() {
		t.Errorf("another account sees %v", r)
	}
}

// TestConcurrentBinds: one EIP bound to two HAVIPs at once: exactly one wins. And a HAVIP
// delete racing an EIP bind never leaves an EIP bound to a deleted HAVIP.
func TestConcurrentBinds(t *testing.T) {
	t.Parallel()
	c := suite(t, eip.Config{})
	w := build(t, c)
	for round := range 10 {
		eips := etcdtest.Must[*eipv1.AllocateAddressesResponse](t)(c.eip.AllocateAddresses(w.ctx, &eipv1.AllocateAddressesRequest{})).GetAddressSet()
		f := false
		a := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(w.ctx, &havipv1.CreateHaVipRequest{VpcId: w.vpc, SubnetId: w.subnet, HavipName: "a", CheckAssociate: &f})).GetHavip()
		b := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(w.ctx, &havipv1.CreateHaVipRequest{VpcId: w.vpc, SubnetId: w.subnet, HavipName: "b", CheckAssociate: &f})).GetHavip()
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i, id := range []string{a.GetHavipId(), b.GetHavipId()} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = c.havip.HaVipAssociateAddressIp(w.ctx, &havipv1.HaVipAssociateAddressIpRequest{HavipId: id, AddressIp: eips[0].GetAddressIp()})
			}()
		}
		wg.Add(1)
		go func() { // and a delete of the first HAVIP at the same time
			defer wg.Done()
			_, errs[2] = c.havip.DeleteHaVip(w.ctx, &havipv1.DeleteHaVipRequest{HavipId: a.GetHavipId()})
		}()
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) && errs[0] == nil {
			t.Fatalf("round %d: both binds won", round)
		}
		e := describe(t, c, w.ctx, eips[0].GetAddressId())
		if e.GetHavipId() == a.GetHavipId() {
			if _, err := c.havip.DescribeHaVips(w.ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{a.GetHavipId()}}); status.Code(err) == codes.NotFound {
				t.Fatalf("round %d: the EIP is bound to deleted HAVIP %s", round, a.GetHavipId())
			}
		}
	}
}
