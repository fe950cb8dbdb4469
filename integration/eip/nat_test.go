package eip_test

import (
	"context"
	"testing"
	"time"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/eip"
)

// claim reports a gratuitous ARP of vip from eni through the broker until the broker takes it
// (accepted, or deferred by its flap damping and applied when the window ends).
func claim(t *testing.T, c clients, session int64, agent string, eni *ipamv1.NetworkInterface, vip string) {
	t.Helper()
	report := &arpbrokerv1.ReportArpAnnouncementRequest{AgentId: agent, SessionId: session, NetworkInterfaceId: eni.GetNetworkInterfaceId(), EthernetSourceMac: eni.GetMacAddress(),
		SenderMac: eni.GetMacAddress(), SenderIp: vip, TargetIp: vip, Operation: arpbrokerv1.ArpOperation_ARP_OPERATION_REQUEST}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := c.agent(c.hostOf[session]).ReportArpAnnouncement(context.Background(), report)
		if err == nil {
			switch r.GetResult() {
			case arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED, arpbrokerv1.ClaimResult_CLAIM_RESULT_DEFERRED:
				return
			default:
				t.Fatalf("claim by %s: %v", eni.GetNetworkInterfaceId(), r)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no broker leader: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the broker's election
	}
}

func openSession(t *testing.T, c clients, agent, host string, ttl uint32) int64 {
	t.Helper()
	id := etcdtest.Must[*arpbrokerv1.OpenSessionResponse](t)(c.agent(host).OpenSession(context.Background(), &arpbrokerv1.OpenSessionRequest{AgentId: agent, HostId: host, TtlSeconds: ttl})).GetSessionId()
	c.hostOf[id] = host
	return id
}

// natWatch reads a WatchNatRules stream and checks that the rules of one EIP only ever move
// forward by (binding_revision, owner_revision).
type natWatch struct {
	t       *testing.T
	stream  eipv1.NatRuleService_WatchNatRulesClient
	eipID   string
	last    *eipv1.NatRule
	updates int
}

func newer(a, b *eipv1.NatRule) bool {
	if a.GetBindingRevision() != b.GetBindingRevision() {
		return a.GetBindingRevision() > b.GetBindingRevision()
	}
	return a.GetOwnerRevision() > b.GetOwnerRevision()
}

// await reads until the EIP's rule satisfies ok.
func (w *natWatch) await(what string, ok func(r *eipv1.NatRule) bool) *eipv1.NatRule {
	w.t.Helper()
	if w.last != nil && ok(w.last) {
		return w.last
	}
	for {
		msg, err := w.stream.Recv()
		if err != nil {
			w.t.Fatalf("waiting for %s (last rule %v): %v", what, w.last, err)
		}
		for _, r := range msg.GetRules() {
			if r.GetAddressId() != w.eipID {
				continue
			}
			if w.last != nil && !newer(r, w.last) {
				w.t.Fatalf("rule %v after %v: not newer", r, w.last)
			}
			w.last, w.updates = r, w.updates+1
		}
		if w.last != nil && ok(w.last) {
			return w.last
		}
	}
}

// TestWatchNatRulesFollowsOwner: a HAVIP-bound EIP's rule follows the broker's owner — to an
// ENI, to another ENI on another host, to no backend when the owner's session lapses, and back —
// each change delivered on WatchNatRules with a rising fencing revision, and DescribeAddresses
// showing the same backend. Unbinding removes the rule.
func TestWatchNatRulesFollowsOwner(t *testing.T) {
	c := suite(t, eip.Config{}, service.Must(arpbroker.NewModule(arpbroker.Config{HoldDown: 50 * time.Millisecond})))
	w := build(t, c)
	eni2 := etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.ipam.CreateInstance(w.ctx, &ipamv1.CreateInstanceRequest{InstanceName: "i2", SubnetId: w.subnet, HostId: "host-7"})).GetPrimaryNetworkInterface()
	etcdtest.Must[*havipv1.HaVipAssociateAddressIpResponse](t)(c.havip.HaVipAssociateAddressIp(w.ctx, &havipv1.HaVipAssociateAddressIpRequest{HavipId: w.hv1.GetHavipId(), AddressIp: w.eip1.GetAddressIp()}))

	ctx, cancel := context.WithCancel(context.Background()) // internal service: no account
	defer cancel()
	stream := etcdtest.Must[eipv1.NatRuleService_WatchNatRulesClient](t)(eipv1.NewNatRuleServiceClient(c.conn).WatchNatRules(ctx, &eipv1.WatchNatRulesRequest{}))
	first := etcdtest.Must[*eipv1.WatchNatRulesResponse](t)(stream.Recv())
	if !first.GetSnapshot() {
		t.Fatalf("first message is not the snapshot: %v", first)
	}
	nw := &natWatch{t: t, stream: stream, eipID: w.eip1.GetAddressId()}
	for _, r := range first.GetRules() {
		if r.GetAddressId() == nw.eipID {
			nw.last = r
		}
	}
	if r := nw.last; r == nil || r.GetPublicIp() != w.eip1.GetAddressIp() || r.GetPrivateIp() != w.hv1.GetVip() || r.GetHavipId() != w.hv1.GetHavipId() || r.GetNetworkInterfaceId() != "" {
		t.Fatalf("snapshot rule of the bound, unowned EIP: %v", r)
	}
	agree := func(r *eipv1.NatRule) {
		t.Helper()
		a := describe(t, c, w.ctx, w.eip1.GetAddressId())
		if a.GetNetworkInterfaceId() != r.GetNetworkInterfaceId() || a.GetHostId() != r.GetHostId() || a.GetReachesServer() != (r.GetNetworkInterfaceId() != "") {
			t.Errorf("DescribeAddresses %v disagrees with the rule %v", a, r)
		}
	}

	sessA := openSession(t, c, "agent-a", "host-9", 30)
	claim(t, c, sessA, "agent-a", w.eni, w.hv1.GetVip())
	r := nw.await("the first owner", func(r *eipv1.NatRule) bool { return r.GetNetworkInterfaceId() == w.eni.GetNetworkInterfaceId() })
	if r.GetHostId() != "host-9" || r.GetOwnerRevision() == 0 || r.GetVpcId() != w.vpc {
		t.Errorf("rule after the first owner: %v", r)
	}
	agree(r)

	sessB := openSession(t, c, "agent-b", "host-7", 2) // never kept alive: lapses after 2s
	claim(t, c, sessB, "agent-b", eni2, w.hv1.GetVip())
	r = nw.await("the move to the second ENI", func(r *eipv1.NatRule) bool { return r.GetNetworkInterfaceId() == eni2.GetNetworkInterfaceId() })
	if r.GetHostId() != "host-7" {
		t.Errorf("rule after the move: %v", r)
	}
	agree(r)

	r = nw.await("the lapse of the owner", func(r *eipv1.NatRule) bool { return r.GetNetworkInterfaceId() == "" })
	if r.GetHostId() != "" || r.GetRemoved() || r.GetVpcId() != "" {
		t.Errorf("rule after the lapse: %v", r)
	}
	agree(r)

	claim(t, c, sessA, "agent-a", w.eni, w.hv1.GetVip())
	r = nw.await("the move back", func(r *eipv1.NatRule) bool { return r.GetNetworkInterfaceId() == w.eni.GetNetworkInterfaceId() })
	agree(r)

	etcdtest.Must[*havipv1.HaVipDisassociateAddressIpResponse](t)(c.havip.HaVipDisassociateAddressIp(w.ctx, &havipv1.HaVipDisassociateAddressIpRequest{HavipId: w.hv1.GetHavipId()}))
	nw.await("the removal", func(r *eipv1.NatRule) bool { return r.GetRemoved() })
	if nw.updates < 5 {
		t.Errorf("saw %d rule updates, want at least 5", nw.updates)
	}
}

// TestWatchNatRulesENIBinding: an EIP bound to an ENI maps to it and its host; unbinding
// removes the rule; a watcher opened later does not see it.
func TestWatchNatRulesENIBinding(t *testing.T) {
	t.Parallel()
	c := suite(t, eip.Config{})
	w := build(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := etcdtest.Must[eipv1.NatRuleService_WatchNatRulesClient](t)(eipv1.NewNatRuleServiceClient(c.conn).WatchNatRules(ctx, &eipv1.WatchNatRulesRequest{}))
	etcdtest.Must[*eipv1.WatchNatRulesResponse](t)(stream.Recv())
	nw := &natWatch{t: t, stream: stream, eipID: w.eip2.GetAddressId()}
	a := etcdtest.Must[*eipv1.AssociateAddressResponse](t)(c.eip.AssociateAddress(w.ctx, &eipv1.AssociateAddressRequest{AddressId: w.eip2.GetAddressId(), NetworkInterfaceId: w.eni.GetNetworkInterfaceId()})).GetAddress()
	if a.GetAddressStatus() != "BIND" || a.GetNetworkInterfaceId() != w.eni.GetNetworkInterfaceId() || a.GetPrivateAddressIp() != w.eni.GetPrimaryIpAddress() || a.GetHostId() != "host-9" || !a.GetReachesServer() {
		t.Errorf("AssociateAddress answered %v", a)
	}
	r := nw.await("the ENI binding", func(r *eipv1.NatRule) bool { return r.GetNetworkInterfaceId() != "" })
	if r.GetPrivateIp() != w.eni.GetPrimaryIpAddress() || r.GetHostId() != "host-9" || r.GetPublicIp() != w.eip2.GetAddressIp() || r.GetVpcId() != w.vpc {
		t.Errorf("ENI rule: %v", r)
	}
	etcdtest.Must[*eipv1.DisassociateAddressResponse](t)(c.eip.DisassociateAddress(w.ctx, &eipv1.DisassociateAddressRequest{AddressId: w.eip2.GetAddressId()}))
	nw.await("the removal", func(r *eipv1.NatRule) bool { return r.GetRemoved() })

	later := etcdtest.Must[eipv1.NatRuleService_WatchNatRulesClient](t)(eipv1.NewNatRuleServiceClient(c.conn).WatchNatRules(ctx, &eipv1.WatchNatRulesRequest{}))
	for _, r := range etcdtest.Must[*eipv1.WatchNatRulesResponse](t)(later.Recv()).GetRules() {
		if r.GetAddressId() == w.eip2.GetAddressId() {
			t.Errorf("a later snapshot holds the unbound EIP: %v", r)
		}
	}
}

// TestENIBoundEipFollowsTheENI: an EIP bound to a secondary ENI maps to the CVM the ENI is
// attached to now: no backend while it is detached, the new CVM and host once it is attached
// elsewhere — each change a newer rule on WatchNatRules, and DescribeAddresses agreeing.
func TestENIBoundEipFollowsTheENI(t *testing.T) {
	t.Parallel()
	c := suite(t, eip.Config{})
	w := build(t, c)
	insB := etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.ipam.CreateInstance(w.ctx, &ipamv1.CreateInstanceRequest{InstanceName: "b", SubnetId: w.subnet, HostId: "host-b"})).GetInstance()
	s := etcdtest.Must[*ipamv1.CreateNetworkInterfaceResponse](t)(c.ipam.CreateNetworkInterface(w.ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: w.subnet, NetworkInterfaceName: "s"})).GetNetworkInterface()
	attach := func(ins string) {
		etcdtest.Must[*ipamv1.AttachNetworkInterfaceResponse](t)(c.ipam.AttachNetworkInterface(w.ctx, &ipamv1.AttachNetworkInterfaceRequest{NetworkInterfaceId: s.GetNetworkInterfaceId(), InstanceId: ins}))
	}
	attach(w.eni.GetInstanceId())                                            // on the CVM of host-9
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a rule that never comes fails the test
	defer cancel()
	stream := etcdtest.Must[eipv1.NatRuleService_WatchNatRulesClient](t)(eipv1.NewNatRuleServiceClient(c.conn).WatchNatRules(ctx, &eipv1.WatchNatRulesRequest{}))
	etcdtest.Must[*eipv1.WatchNatRulesResponse](t)(stream.Recv())
	nw := &natWatch{t: t, stream: stream, eipID: w.eip1.GetAddressId()}
	etcdtest.Must[*eipv1.AssociateAddressResponse](t)(c.eip.AssociateAddress(w.ctx, &eipv1.AssociateAddressRequest{AddressId: w.eip1.GetAddressId(), NetworkInterfaceId: s.GetNetworkInterfaceId()}))
	nw.await("the CVM of host-9", func(r *eipv1.NatRule) bool {
		return r.GetInstanceId() == w.eni.GetInstanceId() && r.GetHostId() == "host-9"
	})

	etcdtest.Must[*ipamv1.DetachNetworkInterfaceResponse](t)(c.ipam.DetachNetworkInterface(w.ctx, &ipamv1.DetachNetworkInterfaceRequest{NetworkInterfaceId: s.GetNetworkInterfaceId()}))
	nw.await("no backend while detached", func(r *eipv1.NatRule) bool { return r.GetInstanceId() == "" && r.GetHostId() == "" && !r.GetRemoved() })
	if a := describe(t, c, w.ctx, w.eip1.GetAddressId()); a.GetReachesServer() || a.GetInstanceId() != "" {
		t.Errorf("a detached ENI's EIP reaches a server: %v", a)
	}

	attach(insB.GetInstanceId())
	nw.await("the CVM of host-b", func(r *eipv1.NatRule) bool {
		return r.GetInstanceId() == insB.GetInstanceId() && r.GetHostId() == "host-b"
	})
	if a := describe(t, c, w.ctx, w.eip1.GetAddressId()); !a.GetReachesServer() || a.GetInstanceId() != insB.GetInstanceId() || a.GetHostId() != "host-b" {
		t.Errorf("DescribeAddresses after the move: %v", a)
	}
}
