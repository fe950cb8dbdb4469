package arpbroker_test

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/integration/fabric"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/grpcclient"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/proctest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/arpbroker/agent"
	garpparse "github.com/openhavip/havip/services/arpbroker/garp"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

// TestReReportAfterFailover: an agent (real AF_PACKET port in a namespace) reports to two
// arpbrokerd processes. The broker leader is SIGKILLed, and right after, while no replica
// decides claims, the VM behind the agent's port sends one gratuitous ARP for a HAVIP: the
// claim cannot be decided then (the stream broke, or the survivor has no leader to forward
// to), and no other announcement follows. The agent reports it again once a broker decides
// claims, and the ENI becomes the owner.
func TestReReportAfterFailover(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the agent's port is a veth in a network namespace the test creates")
	}
	c := serve(t, ipam.Module, service.Must(havip.NewModule(havip.Config{}))) // the inventory; the brokers are the two processes
	w := build(t, c)
	bin := proctest.Build(t, "../../services/arpbroker/cmd/arpbrokerd")
	env := []string{"HAVIP_GRPC_ADDR=127.0.0.1:0", "HAVIP_ETCD_ENDPOINTS=" + etcdEndpoint, "HAVIP_INSECURE_ETCD=true", "HAVIP_ARP_HOLD_DOWN=50ms", "HAVIP_ARP_ELECTION_TTL=2s"}
	env = append(env, mtlstest.Env(t, identity.ID{Kind: identity.Service, Name: "arpbrokerd"})...)
	procs := []*proctest.Proc{proctest.Start(t, bin, env...), proctest.Start(t, bin, env...)}
	c.broker = newBrokerAs(t, etcdtest.DialAs(t, procs[0].Addr, mtlstest.Operator))
	awaitLeader(t, c, session(t, c, 30))

	// The host: port p1 in its namespace, the VM of ENI s1 (host-1) behind it.
	tag := ids.New("")[1:7]
	host, vm := "hvr"+tag, "hvw"+tag
	netns(t, host)
	netns(t, vm)
	fabric.Run(t, "ip", "-n", host, "link", "add", "p1", "type", "veth", "peer", "name", "eth0", "netns", vm)
	fabric.Run(t, "ip", "-n", vm, "link", "set", "eth0", "address", w.s1.mac)
	fabric.Run(t, "ip", "-n", vm, "link", "set", "eth0", "up")
	fabric.Run(t, "ip", "-n", host, "link", "set", "p1", "up")
	var vmPort *packet.Conn
	fabric.In(t, vm, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		vmPort, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
		return err
	})
	t.Cleanup(func() { _ = vmPort.Close() })
	mac, _ := net.ParseMAC(w.s1.mac)
	announce := func(vip string) {
		t.Helper()
		ip := netip.MustParseAddr(vip)
		frame := garpparse.Frame(garpparse.Packet{EthernetSource: mac, Operation: 1, SenderMAC: mac, SenderIP: ip, TargetIP: ip})
		if _, err := vmPort.WriteTo(frame, &packet.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}); err != nil {
			t.Fatal(err)
		}
	}

	// The agent of host-1 reaches both brokers, round-robin, as arpagent does.
	conn, err := grpcclient.NewClient(procs[0].Addr+","+procs[1].Addr, grpcclient.Options(mtlstest.Source(t, mtlstest.Agent(w.s1.host)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ag := agent.New(agent.Config{AgentID: agentOf(w.s1.host), HostID: w.s1.host, Ports: map[string]string{"p1": w.s1.id}, SessionTTL: 30 * time.Second},
		arpbrokerv1.NewArpBrokerServiceClient(conn), etcdtest.Quiet)
	runAgent(t, host, ag)
	owner := func(id string) string { return state(t, c, w.ctx, id).GetNetworkInterfaceId() }
	// The agent works: a first announcement (of another HAVIP) makes s1 its owner.
	warm := time.Now()
	announce(w.eniRange.GetVip())
	fabric.Await(t, 10*time.Second, "s1 owns the ENI-range HAVIP", func() bool { return owner(w.eniRange.GetHavipId()) == w.s1.id })
	t.Logf("first claim decided in %v", time.Since(warm).Round(time.Millisecond))

	cli := etcdtest.Client(t, etcdEndpoint)
	leader := leaderOf(t, cli, procs)
	if err := leader.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	announce(w.open.GetVip()) // once: keepalived's burst is over before a broker decides again
	if o := owner(w.open.GetHavipId()); o != "" {
		t.Fatalf("the HAVIP has an owner (%s) before the survivor could be leader", o)
	}
	fabric.Await(t, 2*time.Second+10*time.Second, "s1 owns the HAVIP announced while the leader died", func() bool { return owner(w.open.GetHavipId()) == w.s1.id })
	t.Logf("the claim made while the leader died was decided %v after the kill (election TTL 2s)", time.Since(killed).Round(time.Millisecond))
}
