package arpbroker_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

var etcdEndpoint string

func TestMain(m *testing.M) { os.Exit(etcdtest.Main(m, &etcdEndpoint)) }

type clients struct {
	ipam   ipamv1.IpamServiceClient
	havip  havipv1.HaVipServiceClient
	broker *brokerAs
	conn   *grpc.ClientConn
}

// brokerAs calls the broker as the identity each call needs, over mTLS: the agent methods as
// the agent of the host the request names (agent_id "agent-<host>", or host_id), with that
// host's agent certificate; the others (watch, listings) as an operator.
type brokerAs struct {
	arpbrokerv1.ArpBrokerServiceClient // as an operator
	tb                                 testing.TB
	target                             string
	mu                                 sync.Mutex
	agents                             map[string]arpbrokerv1.ArpBrokerServiceClient
}

// host is the client of the agent of host.
func (b *brokerAs) host(host string) arpbrokerv1.ArpBrokerServiceClient {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.agents[host]
	if !ok {
		a = arpbrokerv1.NewArpBrokerServiceClient(etcdtest.DialAs(b.tb, b.target, mtlstest.Agent(host)))
		b.agents[host] = a
	}
	return a
}

// hostOfAgent is the host an agent ID names ("agent-<host>"); another ID gets a host of its own.
func hostOfAgent(agentID string) string {
	if h, ok := strings.CutPrefix(agentID, "agent-"); ok && h != "" {
		return h
	}
	return "unknown-" + agentID
}

func (b *brokerAs) OpenSession(ctx context.Context, in *arpbrokerv1.OpenSessionRequest, opts ...grpc.CallOption) (*arpbrokerv1.OpenSessionResponse, error) {
	return b.host(hostOfAgent(in.GetAgentId())).OpenSession(ctx, in, opts...)
}

func (b *brokerAs) KeepAliveSession(ctx context.Context, in *arpbrokerv1.KeepAliveSessionRequest, opts ...grpc.CallOption) (*arpbrokerv1.KeepAliveSessionResponse, error) {
	return b.host(hostOfAgent(in.GetAgentId())).KeepAliveSession(ctx, in, opts...)
}

func (b *brokerAs) ReportArpAnnouncement(ctx context.Context, in *arpbrokerv1.ReportArpAnnouncementRequest, opts ...grpc.CallOption) (*arpbrokerv1.ReportArpAnnouncementResponse, error) {
	return b.host(hostOfAgent(in.GetAgentId())).ReportArpAnnouncement(ctx, in, opts...)
}

// suite runs ipamd, havipd and arpbrokerd (with cfg) in one process on the shared etcd. The
// tests of this package do not run in parallel: every arpbrokerd replica on one etcd takes part
// in one election, and a test's claims must not be decided by another test's replica.
func suite(t testing.TB, cfg arpbroker.Config) clients {
	return serve(t, ipam.Module, service.Must(havip.NewModule(havip.Config{})), service.Must(arpbroker.NewModule(cfg)))
}

func serve(t testing.TB, modules ...service.Module) clients {
	conn, _ := etcdtest.Serve(t, etcdEndpoint, modules...)
	return clients{ipamv1.NewIpamServiceClient(conn), havipv1.NewHaVipServiceClient(conn), newBrokerAs(t, conn), conn}
}

// newBrokerAs calls the broker that operator reaches, as brokerAs describes.
func newBrokerAs(tb testing.TB, operator *grpc.ClientConn) *brokerAs {
	return &brokerAs{ArpBrokerServiceClient: arpbrokerv1.NewArpBrokerServiceClient(operator), tb: tb, target: operator.Target(), agents: map[string]arpbrokerv1.ArpBrokerServiceClient{}}
}

func as(account string) context.Context { return tenant.Outgoing(context.Background(), account) }

type nic struct{ id, mac, ip, instance, host string }

// world is one tenant's network with HAVIPs of every kind of switch range.
type world struct {
	ctx                context.Context
	vpc, subnetA       string
	p1, s1, p2, s2, p4 nic // primary and secondary ENIs of CVM1, CVM2; p4: a CVM outside every range
	p3                 nic // the primary ENI of a CVM in another subnet of the VPC
	enis               map[string]nic
	eniRange, cvmRange *havipv1.HaVip // ranges {s1, s2} and {CVM1, CVM2}
	open, deleted      *havipv1.HaVip // check_associate off; deleted
}

func build(t *testing.T, c clients) world { return buildIn(t, c, "10.0.0.0/24") }

// buildBig is build with a /22 subnet, room for a thousand HAVIPs.
func buildBig(t testing.TB, c clients) world { return buildIn(t, c, "10.0.0.0/22") }

func buildIn(t testing.TB, c clients, cidrA string) world {
	account := "acct-arp" + ids.New("")
	w := world{ctx: tenant.Outgoing(context.Background(), account), enis: map[string]nic{}}
	ctx := w.ctx
	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.ipam.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	w.vpc = vpc
	subnet := func(cidr string) string {
		return etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.ipam.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: cidr})).GetSubnet().GetSubnetId()
	}
	w.subnetA = subnet(cidrA)
	subnetB := subnet("10.0.8.0/24")
	hostOf := map[string]string{}
	toNic := func(e *ipamv1.NetworkInterface) nic {
		n := nic{e.GetNetworkInterfaceId(), e.GetMacAddress(), e.GetPrimaryIpAddress(), e.GetInstanceId(), hostOf[e.GetInstanceId()]}
		w.enis[n.id] = n
		return n
	}
	cvm := func(sn, host string) nic {
		r := etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.ipam.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "n", SubnetId: sn, HostId: host}))
		hostOf[r.GetInstance().GetInstanceId()] = host
		return toNic(r.GetPrimaryNetworkInterface())
	}
	secondary := func(ins string) nic {
		e := etcdtest.Must[*ipamv1.CreateNetworkInterfaceResponse](t)(c.ipam.CreateNetworkInterface(ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: w.subnetA, NetworkInterfaceName: "e"})).GetNetworkInterface()
		return toNic(etcdtest.Must[*ipamv1.AttachNetworkInterfaceResponse](t)(c.ipam.AttachNetworkInterface(ctx, &ipamv1.AttachNetworkInterfaceRequest{NetworkInterfaceId: e.GetNetworkInterfaceId(), InstanceId: ins})).GetNetworkInterface())
	}
	w.p1, w.p2, w.p4 = cvm(w.subnetA, "host-1"), cvm(w.subnetA, "host-2"), cvm(w.subnetA, "host-4")
	w.p3 = cvm(subnetB, "host-3")
	w.s1, w.s2 = secondary(w.p1.instance), secondary(w.p2.instance)
	mk := func(name string, check bool, assoc []*havipv1.HaVipAssociation) *havipv1.HaVip {
		return etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: w.subnetA, HavipName: name, CheckAssociate: &check, HavipAssociationSet: assoc})).GetHavip()
	}
	w.eniRange = mk("eni-range", true, []*havipv1.HaVipAssociation{{InstanceId: w.s1.id, InstanceType: "ENI"}, {InstanceId: w.s2.id, InstanceType: "ENI"}})
	w.cvmRange = mk("cvm-range", true, []*havipv1.HaVipAssociation{{InstanceId: w.p1.instance, InstanceType: "CVM"}, {InstanceId: w.p2.instance, InstanceType: "CVM"}})
	w.open = mk("open", false, nil)
	w.deleted = mk("deleted", true, nil)
	etcdtest.Must[*havipv1.DeleteHaVipResponse](t)(c.havip.DeleteHaVip(ctx, &havipv1.DeleteHaVipRequest{HavipId: w.deleted.GetHavipId()}))
	return w
}

// agents are one agent per host, each with a session of one TTL (opened on first use): a claim
// goes under the session of the announcing ENI's host, as the agent of that host reports it.
type agents struct {
	tb     testing.TB
	c      clients
	ttl    uint32
	mu     sync.Mutex
	byHost map[string]int64
}

// session returns the agents of every host, with sessions of the given TTL.
func session(tb testing.TB, c clients, ttl uint32) *agents {
	return &agents{tb: tb, c: c, ttl: ttl, byHost: map[string]int64{}}
}

func agentOf(host string) string { return "agent-" + host }

// of returns the session of host's agent, opening it the first time.
func (a *agents) of(host string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if id, ok := a.byHost[host]; ok {
		return id
	}
	r, err := a.c.broker.OpenSession(context.Background(), &arpbrokerv1.OpenSessionRequest{AgentId: agentOf(host), HostId: host, TtlSeconds: a.ttl})
	if err != nil {
		a.tb.Fatalf("open the session of %s: %v", host, err)
	}
	a.byHost[host] = r.GetSessionId()
	return r.GetSessionId()
}

// keepAlive renews every session the agents opened.
func (a *agents) keepAlive() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for host, id := range a.byHost {
		if _, err := a.c.broker.KeepAliveSession(context.Background(), &arpbrokerv1.KeepAliveSessionRequest{SessionId: id, AgentId: agentOf(host)}); err != nil {
			return err
		}
	}
	return nil
}

// garp is the report of a well-formed gratuitous ARP from n for vip, by the agent of n's host.
func garp(a *agents, n nic, vip string) *arpbrokerv1.ReportArpAnnouncementRequest {
	return &arpbrokerv1.ReportArpAnnouncementRequest{
		AgentId: agentOf(n.host), SessionId: a.of(n.host), NetworkInterfaceId: n.id, EthernetSourceMac: n.mac, SenderMac: n.mac,
		SenderIp: vip, TargetIp: vip, Operation: arpbrokerv1.ArpOperation_ARP_OPERATION_REQUEST,
	}
}

// state reads a HAVIP as havipd shows it.
func state(t testing.TB, c clients, ctx context.Context, id string) *havipv1.HaVip {
	t.Helper()
	return etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{id}})).GetHavipSet()[0]
}

// awaitLeader waits until some replica decides claims (the election takes a moment at start).
func awaitLeader(t testing.TB, c clients, sess *agents) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.broker.ReportArpAnnouncement(context.Background(), garp(sess, nic{id: "eni-00000000", mac: "02:00:00:00:00:00"}, "10.255.255.1"))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no broker leader: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the election
	}
}
