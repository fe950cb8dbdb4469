package arpbroker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/packet"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/integration/fabric"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/arpbroker/agent"
	garpframe "github.com/openhavip/havip/services/arpbroker/garp"
	keepalivedconf "github.com/openhavip/havip/services/havip/keepalived"
)

// netns creates a network namespace that is deleted when the test ends.
func netns(t testing.TB, name string) {
	t.Helper()
	fabric.Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	fabric.Run(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// logHas reports whether a keepalived's log (startKeepalived's dir/name.log) holds text.
func logHas(t testing.TB, dir, name, text string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), text)
}

// blockVRRP drops every VRRP packet (IP protocol 112) the VM sends, or, with on false, stops
// dropping them: the VMs still see each other's ARP and the host's agent sees every frame.
func blockVRRP(t testing.TB, ns string, on bool) {
	t.Helper()
	if !on {
		fabric.Run(t, "ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "havip_split")
		return
	}
	fabric.Run(t, "ip", "netns", "exec", ns, "nft", "add", "table", "inet", "havip_split")
	fabric.Run(t, "ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "havip_split", "out", "{ type filter hook output priority 0; }")
	fabric.Run(t, "ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "havip_split", "out", "ip", "protocol", "vrrp", "drop")
}

// countGARPs counts the gratuitous ARPs of vip the VM behind a port of the host's namespace
// sends, from now until the test ends.
func countGARPs(t testing.TB, host, port, vip string) func() int {
	t.Helper()
	var conn *packet.Conn
	fabric.In(t, host, func() (err error) { conn, err = agent.Listen(port); return err })
	var mu sync.Mutex
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1600)
		for {
			m, _, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed at cleanup
			}
			if p, err := garpframe.Parse(buf[:m]); err == nil && p.Gratuitous() && p.SenderIP.String() == vip {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { _ = conn.Close(); <-done })
	return func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// lab is a HAVIP between two "VMs" (network namespaces) on a host bridge, a third VM outside
// its switch range, the keepalived configurations havipd generates, and the host's agent.
type lab struct {
	c       clients
	ctx     context.Context
	hv      *havipv1.HaVip
	configs []*havipv1.KeepalivedConfig
	cvms    []*ipamv1.CreateInstanceResponse
	vms     []string // the VMs' namespaces
	host    string   // the host's namespace, ports p1..p3 on bridge br0
	dir     string
	agent   *agent.Agent
}

func newLab(t testing.TB, cfg arpbroker.Config) *lab {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root for network namespaces")
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Fatal("keepalived is not installed (scripts/install-system-deps.sh)")
	}
	c := suite(t, cfg)
	awaitLeader(t, c, session(t, c, 30)) // a replica of an earlier test may still hold the election for a moment
	account := "acct-keepalived" + ids.New("")
	ctx := as(account)
	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.ipam.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	subnet := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.ipam.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.0.0/24"})).GetSubnet().GetSubnetId()
	var cvms []*ipamv1.CreateInstanceResponse
	for i := range 3 {
		cvms = append(cvms, etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.ipam.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: fmt.Sprintf("vm%d", i+1), SubnetId: subnet, HostId: "host-e2e"})))
	}
	hv := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: subnet, HavipName: "e2e",
		HavipAssociationSet: []*havipv1.HaVipAssociation{
			{InstanceId: cvms[0].GetInstance().GetInstanceId(), InstanceType: "CVM"},
			{InstanceId: cvms[1].GetInstance().GetInstanceId(), InstanceType: "CVM"},
		}})).GetHavip()
	configs := etcdtest.Must[*havipv1.DescribeHaVipKeepalivedConfigResponse](t)(c.havip.DescribeHaVipKeepalivedConfig(ctx, &havipv1.DescribeHaVipKeepalivedConfigRequest{HavipId: hv.GetHavipId(), Interface: "eth0"})).GetConfigSet()

	// The network: a host namespace with a bridge, and a namespace per VM on a veth whose VM
	// end has the ENI's MAC and primary IP.
	tag := ids.New("")[1:7]
	host := "hvh" + tag
	netns(t, host)
	fabric.Run(t, "ip", "-n", host, "link", "add", "br0", "type", "bridge")
	fabric.Run(t, "ip", "-n", host, "link", "set", "br0", "up")
	ports := map[string]string{}
	vms := make([]string, 3)
	for i, cvm := range cvms {
		eni := cvm.GetPrimaryNetworkInterface()
		vms[i] = fmt.Sprintf("hv%d%s", i+1, tag)
		port := fmt.Sprintf("p%d", i+1)
		netns(t, vms[i])
		fabric.Run(t, "ip", "-n", host, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", vms[i])
		fabric.Run(t, "ip", "-n", vms[i], "link", "set", "eth0", "address", eni.GetMacAddress())
		fabric.Run(t, "ip", "-n", vms[i], "addr", "add", eni.GetPrimaryIpAddress()+"/24", "dev", "eth0")
		fabric.Run(t, "ip", "-n", vms[i], "link", "set", "eth0", "up")
		fabric.Run(t, "ip", "-n", host, "link", "set", port, "master", "br0")
		fabric.Run(t, "ip", "-n", host, "link", "set", port, "up")
		ports[port] = eni.GetNetworkInterfaceId()
	}

	// The host's agent, its sockets opened in the host namespace.
	ag := agent.New(agent.Config{AgentID: "agent-e2e", HostID: "host-e2e", Ports: ports, SessionTTL: 10 * time.Second}, c.broker.host("host-e2e"), etcdtest.Quiet) // over mTLS, with the host's agent certificate
	runAgent(t, host, ag)

	return &lab{c: c, ctx: ctx, hv: hv, configs: configs, cvms: cvms, vms: vms, host: host, dir: t.TempDir(), agent: ag}
}

// TestKeepalivedMovesTheHaVip: two "VMs" (network namespaces) on a host bridge run keepalived
// with the configuration havipd generates; an agent watches the host's ports. The MASTER's ENI
// becomes the owner; when its keepalived is killed the backup's ENI takes over; a third VM
// outside the switch range that announces the VIP with a higher priority is rejected.
func TestKeepalivedMovesTheHaVip(t *testing.T) {
	l := newLab(t, arpbroker.Config{})
	c, ctx, hv, configs, cvms, vms, dir := l.c, l.ctx, l.hv, l.configs, l.cvms, l.vms, l.dir
	// owner waits until one of want owns the HAVIP and returns it.
	owner := func(within time.Duration, want ...string) string {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got := state(t, c, ctx, hv.GetHavipId())
			if got.GetState() == "BIND" && slices.Contains(want, got.GetNetworkInterfaceId()) {
				return got.GetNetworkInterfaceId()
			}
			if time.Now().After(deadline) {
				t.Fatalf("owner is %q (%s), want one of %v", got.GetNetworkInterfaceId(), got.GetState(), want)
			}
			time.Sleep(50 * time.Millisecond) // polling for keepalived's election
		}
	}
	var kas []*fabric.Keepalived
	for i, cfg := range configs {
		if cfg.GetInstanceId() != cvms[i].GetInstance().GetInstanceId() {
			t.Fatalf("config %d is for %s", i, cfg.GetInstanceId())
		}
		kas = append(kas, fabric.StartKeepalived(t, vms[i], dir, fmt.Sprintf("vm%d", i+1), cfg.GetConfig()))
	}
	// The first VM to become MASTER (normally VM1, whose higher priority gives it a 40ms shorter
	// wait; a slow start of VM1 lets VM2 win, and nopreempt keeps it) makes its ENI the owner.
	first := 0
	if owner(20*time.Second, configs[0].GetNetworkInterfaceId(), configs[1].GetNetworkInterfaceId()) == configs[1].GetNetworkInterfaceId() {
		first = 1
	}
	other := 1 - first

	// The MASTER's keepalived dies: the other takes over, and so does its ENI.
	kas[first].Kill()
	fabric.Run(t, "ip", "-n", vms[first], "addr", "flush", "dev", "eth0", "to", hv.GetVip()+"/32") // the VIP a killed keepalived leaves behind
	owner(20*time.Second, configs[other].GetNetworkInterfaceId())
	// The agent applied both owners, in fencing order.
	var applied []*arpbrokerv1.Ownership
	for len(applied) == 0 || applied[len(applied)-1].GetNetworkInterfaceId() != configs[other].GetNetworkInterfaceId() {
		select {
		case o := <-l.agent.Applied():
			if o.GetHavipId() == hv.GetHavipId() {
				applied = append(applied, o)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the agent applied %v, not the takeover", applied)
		}
	}
	for i := 1; i < len(applied); i++ {
		if applied[i].GetRevision() <= applied[i-1].GetRevision() {
			t.Errorf("applied revision %d after %d", applied[i].GetRevision(), applied[i-1].GetRevision())
		}
	}

	// VM3 is outside the switch range; it announces the VIP at a higher priority, and sends its
	// adverts (same virtual router, same VIP) to the MASTER: the configuration of the dead
	// MASTER, with VM3's address and priority 200.
	third := strings.NewReplacer(fmt.Sprintf("priority %d\n", configs[first].GetPriority()), "priority 200\n", "state BACKUP ", "state MASTER ").Replace(configs[first].GetConfig())
	third = strings.Replace(third, "unicast_src_ip "+cvms[first].GetPrimaryNetworkInterface().GetPrimaryIpAddress(), "unicast_src_ip "+cvms[2].GetPrimaryNetworkInterface().GetPrimaryIpAddress(), 1)
	fabric.StartKeepalived(t, vms[2], dir, "vm3", third)
	outsider := cvms[2].GetPrimaryNetworkInterface().GetNetworkInterfaceId()
	// The MASTER ignores VM3's adverts, as VM3 is not one of its peers (check_unicast_src; with no
	// authentication nothing else would stop them), and keeps the VIP.
	otherLog := fmt.Sprintf("vm%d", other+1)
	ignored, yielded := "unicast source address "+cvms[2].GetPrimaryNetworkInterface().GetPrimaryIpAddress()+" not a unicast peer", "with higher priority 200"
	fabric.Await(t, 10*time.Second, "the MASTER hears VM3", func() bool {
		return logHas(t, dir, otherLog, ignored) || logHas(t, dir, otherLog, yielded)
	})
	if logHas(t, dir, otherLog, yielded) || !fabric.HasVIP(t, vms[other], hv.GetVip()) {
		t.Errorf("the MASTER yielded to VM3's adverts")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		rs := etcdtest.Must[*arpbrokerv1.ListArpRejectionsResponse](t)(c.broker.ListArpRejections(ctx, &arpbrokerv1.ListArpRejectionsRequest{HavipId: hv.GetHavipId()}))
		if len(rs.GetRejectionSet()) > 0 && rs.GetRejectionSet()[0].GetNetworkInterfaceId() == outsider {
			if r := rs.GetRejectionSet()[0].GetReason(); r != "OutsideSwitchRange" {
				t.Fatalf("VM3 rejected for %s", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("VM3's announcement was never rejected: %v", rs)
		}
		time.Sleep(50 * time.Millisecond) // polling for VM3's keepalived to announce
	}
	owner(0, configs[other].GetNetworkInterfaceId())
}

// TestKeepalivedSplitBrainHeals: the two VMs stop hearing each other's VRRP, both become MASTER
// and announce the VIP, and the platform's owner is the lower-priority VM2, the last to
// announce. The split heals the way that leaves the platform nothing to see: VM1's adverts
// reach VM2 first, so VM2 steps down without VM1 ever hearing a lower priority (which it would
// answer with an announcement). VM1, the real MASTER, owns the HAVIP again within one
// garp_master_refresh period plus a second of the heal: its next refresh, or, if that falls
// within the broker's hold-down (3 s) after VM2's takeover, the end of the hold-down.
func TestKeepalivedSplitBrainHeals(t *testing.T) {
	l := newLab(t, arpbroker.Config{})
	c, ctx, hv, configs, vms, dir := l.c, l.ctx, l.hv, l.configs, l.vms, l.dir
	vip := hv.GetVip()
	owner := func() string {
		got := state(t, c, ctx, hv.GetHavipId())
		if got.GetState() != "BIND" {
			return ""
		}
		return got.GetNetworkInterfaceId()
	}
	vm1, vm2 := configs[0].GetNetworkInterfaceId(), configs[1].GetNetworkInterfaceId()

	// VM1 (priority 100) starts alone and becomes MASTER; then VM2 (priority 90) joins. The
	// split begins after VM1's announcements of becoming MASTER: the burst of five, and five
	// more garp_master_delay (5 s) later; after that only a refresh would announce again.
	vm1GARPs := countGARPs(t, l.host, "p1", vip)
	fabric.StartKeepalived(t, vms[0], dir, "vm1", configs[0].GetConfig())
	fabric.Await(t, 20*time.Second, "VM1 owns the HAVIP", func() bool { return owner() == vm1 })
	fabric.StartKeepalived(t, vms[1], dir, "vm2", configs[1].GetConfig())
	fabric.Await(t, 10*time.Second, "VM1's second burst", func() bool { return vm1GARPs() >= 10 })

	// The split: neither hears the other, VM2 becomes MASTER too and takes the HAVIP.
	blockVRRP(t, vms[0], true)
	blockVRRP(t, vms[1], true)
	fabric.Await(t, 15*time.Second, "VM2 owns the HAVIP", func() bool { return owner() == vm2 })
	if !fabric.HasVIP(t, vms[0], vip) || !fabric.HasVIP(t, vms[1], vip) {
		t.Fatalf("not a split brain: VIP on VM1 %v, on VM2 %v", fabric.HasVIP(t, vms[0], vip), fabric.HasVIP(t, vms[1], vip))
	}

	// The heal: VM1's adverts first, until VM2 steps down; then VM2's.
	healed := time.Now()
	blockVRRP(t, vms[0], false)
	fabric.Await(t, 5*time.Second, "VM2 steps down", func() bool { return !fabric.HasVIP(t, vms[1], vip) })
	blockVRRP(t, vms[1], false)
	fabric.Await(t, time.Until(healed.Add(keepalivedconf.GARPRefresh+time.Second)), "the platform follows the real MASTER, VM1", func() bool { return owner() == vm1 })
	t.Logf("VM1 owns the HAVIP again %v after the heal", time.Since(healed).Round(time.Millisecond))
	if !fabric.HasVIP(t, vms[0], vip) || fabric.HasVIP(t, vms[1], vip) {
		t.Errorf("after the heal: VIP on VM1 %v, on VM2 %v; want VM1 only", fabric.HasVIP(t, vms[0], vip), fabric.HasVIP(t, vms[1], vip))
	}
}

// runAgent opens ag's sockets in the namespace host and runs it until the test ends, failing
// the test if it ends with an error.
func runAgent(t testing.TB, host string, ag *agent.Agent) {
	t.Helper()
	fabric.In(t, host, ag.Open)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
}
