package dataplane_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/integration/fabric"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/arpbroker/agent"
	"github.com/openhavip/havip/services/arpbroker/hostroute"
	"github.com/openhavip/havip/services/eip"
	"github.com/openhavip/havip/services/eip/natgw"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

var etcdEndpoint string

func TestMain(m *testing.M) { os.Exit(etcdtest.Main(m, &etcdEndpoint)) }

// handleIn is a netlink handle in the named namespace.
func handleIn(t testing.TB, ns string) *netlink.Handle {
	t.Helper()
	n, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = n.Close() }()
	h, err := netlink.NewHandleAt(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// background runs fn until the test ends (or stop is called), and reports its error.
func background(t testing.TB, fn func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stopped with %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestPacketsFollowTheOwner: two hosts of the fabric; VM1 and VM3 on host A, VM2 on host B run
// keepalived for one HAVIP whose switch range is two CVMs, VM1 and VM2 (VM3 runs it outside
// the range, at a lower priority); VM4 on host B, outside the range, runs keepalived for the
// same VIP at a higher priority. Each host runs its agent with
// route programming, the gateway runs natd. A VPC client VM probes the VIP and an internet
// client the HAVIP's EIP, 200 probes a second each; every VM answers with its name.
//
// The probes reach the MASTER only; when its keepalived is killed they reach the new MASTER
// within keepalived's takeover (seen on the wire) + 300 ms, and no more are lost while every
// host's router restarts; VM4 never gets one; replies to the internet come from the EIP; when
// the owner's host agent dies (its router with it, as in arpagent -routes) and the ownership
// lapses, no probe from another host or the internet reaches any VM any more.
func TestPacketsFollowTheOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	conn, _ := etcdtest.Serve(t, etcdEndpoint, ipam.Module, service.Must(havip.NewModule(havip.Config{})), service.Must(arpbroker.NewModule(arpbroker.Config{})), service.Must(eip.NewModule(eip.Config{})))
	ipamc, havipc, eipc := ipamv1.NewIpamServiceClient(conn), havipv1.NewHaVipServiceClient(conn), eipv1.NewEipServiceClient(conn)
	ctx := tenant.Outgoing(context.Background(), "acct-dataplane"+ids.New(""))
	tag := ids.New("")[1:7]
	hostA, hostB := "host-a"+tag, "host-b"+tag

	// The tenant's network: VM1..VM4 and the client, the HAVIP on VM1..VM3, its EIP.
	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(ipamc.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	subnet := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(ipamc.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.0.0/24"})).GetSubnet()
	// The client is on host A, so that its probes cross the underlay to a MASTER on host B (VM2,
	// the range's other CVM, takes over from VM1): the path a lapse must close.
	hostOf := []string{hostA, hostB, hostA, hostB, hostA} // VM1, VM2, VM3, VM4, the client
	names := []string{"vm1", "vm2", "vm3", "vm4", "client"}
	var cvms []*ipamv1.CreateInstanceResponse
	for i, name := range names {
		cvms = append(cvms, etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(ipamc.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: name, SubnetId: subnet.GetSubnetId(), HostId: hostOf[i]})))
	}
	var assoc []*havipv1.HaVipAssociation
	for _, c := range cvms[:2] {
		assoc = append(assoc, &havipv1.HaVipAssociation{InstanceId: c.GetInstance().GetInstanceId(), InstanceType: "CVM"})
	}
	hv := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(havipc.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: subnet.GetSubnetId(), HavipName: "dp", HavipAssociationSet: assoc})).GetHavip()
	vip := hv.GetVip()
	configs := etcdtest.Must[*havipv1.DescribeHaVipKeepalivedConfigResponse](t)(havipc.DescribeHaVipKeepalivedConfig(ctx, &havipv1.DescribeHaVipKeepalivedConfigRequest{HavipId: hv.GetHavipId(), Interface: "eth0"})).GetConfigSet()
	eipIP := etcdtest.Must[*eipv1.AllocateAddressesResponse](t)(eipc.AllocateAddresses(ctx, &eipv1.AllocateAddressesRequest{AddressCount: 1, AddressName: "pub"})).GetAddressSet()[0].GetAddressIp()
	etcdtest.Must[*havipv1.HaVipAssociateAddressIpResponse](t)(havipc.HaVipAssociateAddressIp(ctx, &havipv1.HaVipAssociateAddressIpRequest{HavipId: hv.GetHavipId(), AddressIp: eipIP}))

	// The fabric: the two hosts, a VM namespace per CVM, the gateway and the internet.
	f := fabric.New(t, "10.0.0.0/16", subnet.GetGatewayIpAddress(), hostA, hostB)
	var vms []*fabric.VM
	for i, c := range cvms {
		eni := c.GetPrimaryNetworkInterface()
		vms = append(vms, f.AddVM(f.Hosts[map[string]int{hostA: 0, hostB: 1}[hostOf[i]]], names[i], eni.GetNetworkInterfaceId(), eni.GetMacAddress(), eni.GetPrimaryIpAddress(), 24))
	}

	// The platform's host side: an agent and a router per host, natd on the gateway.
	agentStop := map[string]func(){}
	routerStop := map[string]func(){}
	startRouter := func(h *fabric.Host, client arpbrokerv1.ArpBrokerServiceClient) {
		r := hostroute.New(hostroute.Config{HostID: h.ID, VPC: vpc, Ports: h.Ports, Hosts: f.Underlays()}, handleIn(t, h.NS), etcdtest.Quiet)
		routerStop[h.ID] = background(t, func(ctx context.Context) error { return r.Run(ctx, client) })
	}
	clients := map[string]arpbrokerv1.ArpBrokerServiceClient{}
	for _, h := range f.Hosts {
		client := arpbrokerv1.NewArpBrokerServiceClient(etcdtest.DialAs(t, conn.Target(), mtlstest.Agent(h.ID)))
		clients[h.ID] = client
		ag := agent.New(agent.Config{AgentID: "agent-" + h.ID, HostID: h.ID, Ports: h.Ports, SessionTTL: 2 * time.Second}, client, etcdtest.Quiet)
		if err := ag.OpenIn("/var/run/netns/" + h.NS); err != nil {
			t.Fatal(err)
		}
		agentStop[h.ID] = background(t, ag.Run)
		startRouter(h, client)
	}
	gwNS, err := netns.GetFromName(f.Gateway)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gwNS.Close() })
	nft, err := nftables.New(nftables.WithNetNSFd(int(gwNS)))
	if err != nil {
		t.Fatal(err)
	}
	natd := natgw.New(natgw.Config{VPC: vpc, Hosts: f.Underlays()}, nft, handleIn(t, f.Gateway), etcdtest.Quiet)
	rules := eipv1.NewNatRuleServiceClient(etcdtest.DialAs(t, conn.Target(), identity.ID{Kind: identity.DataPlane, Name: "natd"}))
	background(t, func(ctx context.Context) error { return natd.Run(ctx, rules) })

	// Every VM answers on the VIP; the clients probe.
	var resp []*responder
	for _, vm := range vms[:4] {
		resp = append(resp, startResponder(t, vm, vip))
	}
	var ann []*garps
	for _, vm := range vms[:3] {
		ann = append(ann, watchGARPs(t, vm, vip))
	}
	vpcProbe := startProber(t, vms[4].NS, vip)
	netProbe := startProber(t, f.Internet, eipIP)
	probers := map[string]*prober{"VPC client → VIP": vpcProbe, "internet → EIP": netProbe}

	// keepalived on the range: VM1 (the highest priority) first, the others once it is MASTER, so
	// that VM1 is the MASTER, with no election among starting peers; then VM4 with VM1's
	// configuration at priority 200.
	dir := t.TempDir()
	var kas []*fabric.Keepalived
	for i, cfg := range configs {
		if cfg.GetInstanceId() != cvms[i].GetInstance().GetInstanceId() {
			t.Fatalf("config %d is for %s", i, cfg.GetInstanceId())
		}
		kas = append(kas, fabric.StartKeepalived(t, vms[i].NS, dir, names[i], cfg.GetConfig()))
		if i == 0 {
			fabric.Await(t, 20*time.Second, "VM1 is MASTER", func() bool { return fabric.HasVIP(t, vms[0].NS, vip) })
		}
	}
	// The outsiders, VM3 and VM4, with VM1's configuration at their own priority (50 and 200):
	// each announces the VIP, and the broker refuses both (outside the range).
	for _, o := range []struct {
		vm       int
		priority int
	}{{2, 50}, {3, 200}} {
		outsider := strings.NewReplacer(fmt.Sprintf("priority %d\n", configs[0].GetPriority()), fmt.Sprintf("priority %d\n", o.priority), "state BACKUP ", "state MASTER ").Replace(configs[0].GetConfig())
		outsider = strings.Replace(outsider, "unicast_src_ip "+vms[0].IP, "unicast_src_ip "+vms[o.vm].IP, 1)
		fabric.StartKeepalived(t, vms[o.vm].NS, dir, names[o.vm], outsider)
	}

	// answeredBy waits until the last 50 probes of both clients were all answered by one VM of
	// the range, and returns its index.
	answeredBy := func(within time.Duration, not int) int {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			time.Sleep(100 * time.Millisecond) // polling the probers' answers
			for i := range 2 {
				all := i != not
				for _, p := range probers {
					n := p.next() - 20 // answers to the newest probes may be on their way
					if p.answers(n-50, n)[names[i]] != 50 {
						all = false
					}
				}
				if all {
					return i
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no VM of the range answers every probe: VPC %v, internet %v", vpcProbe.answers(vpcProbe.next()-200, vpcProbe.next()), netProbe.answers(netProbe.next()-200, netProbe.next()))
			}
		}
	}
	master := answeredBy(30*time.Second, -1)
	if o := state(t, havipc, ctx, hv.GetHavipId()); o.GetNetworkInterfaceId() != configs[master].GetNetworkInterfaceId() {
		t.Fatalf("%s answers but the owner is %q", names[master], o.GetNetworkInterfaceId())
	}
	t.Logf("MASTER: %s on %s", names[master], vms[master].Host.ID)
	from := map[string]int{}
	for name, p := range probers {
		from[name] = p.next()
	}
	vpcProbe.awaitProbes(t, 200) // one second of probes
	for name, p := range probers {
		to := p.awaitProbes(t, 0)
		if got := p.answers(from[name], to); len(got) != 1 || got[names[master]] < (to-from[name])*98/100 {
			t.Errorf("%s: before the failover, probes answered by %v, want %s only", name, got, names[master])
		}
	}

	// The MASTER's keepalived dies (with the VIP it leaves behind: the VM is gone for the VIP).
	kas[master].Kill()
	fabric.Run(t, "ip", "-n", vms[master].NS, "addr", "del", vip+"/32", "dev", "eth0")
	killed := map[string]int{}
	for name, p := range probers {
		killed[name] = p.next()
	}
	next := answeredBy(20*time.Second, master)
	for name, p := range probers {
		lastOld := p.last(names[master], killed[name])
		firstNew := p.first(names[next], lastOld+1)
		if lastOld < 0 || firstNew < 0 {
			t.Fatalf("%s: no answer from %s before the kill (%d) or from %s after (%d)", name, names[master], lastOld, names[next], firstNew)
		}
		garp, ok := ann[next].firstAfter(p.sentAt(lastOld))
		if !ok {
			t.Fatalf("%s never announced the VIP", names[next])
		}
		gap := p.sentAt(firstNew).Sub(p.sentAt(lastOld))
		takeover := garp.Sub(p.sentAt(lastOld))
		t.Logf("%s: gap %v (probes %d..%d), keepalived's takeover on the wire %v, the platform's part %v",
			name, gap.Round(time.Millisecond), lastOld, firstNew, takeover.Round(time.Millisecond), (gap - takeover).Round(time.Millisecond))
		if gap > takeover+300*time.Millisecond {
			t.Errorf("%s: the probes reached %s %v after the last answer of %s; keepalived took over in %v: more than 300ms of it is the platform's", name, names[next], gap, names[master], takeover)
		}
		from[name] = firstNew
	}
	t.Logf("new MASTER: %s on %s", names[next], vms[next].Host.ID)
	// Within this window every host's router restarts: it reconciles from a new snapshot and
	// leaves the VIP's route as it is, so no probe is lost to it.
	vpcProbe.awaitProbes(t, 60)
	for _, h := range f.Hosts {
		routerStop[h.ID]()
		startRouter(h, clients[h.ID])
	}
	vpcProbe.awaitProbes(t, 140)
	for name, p := range probers {
		to := p.awaitProbes(t, 0)
		if got := p.answers(from[name], to); len(got) != 1 || got[names[next]] < (to-from[name])*98/100 {
			t.Errorf("%s: after the failover, probes answered by %v, want %s only", name, got, names[next])
		}
	}

	// The new MASTER's host agent dies, its router with it (one process in arpagent -routes):
	// its session, and so the ownership, lapses (the new MASTER keeps the VIP on its
	// interface). No probe from another host or the internet sent after the platform shows the
	// lapse (and its propagation, 250ms) reaches any VM. (The dead router's own host keeps the
	// route it had, as the kernel does: VMs on that host are not checked here; README.)
	// No other VM of the range is left to take the VIP over (VM1's keepalived is dead), so the
	// lapse stands while it is checked.
	owner := vms[next].Host.ID
	agentStop[owner]()
	routerStop[owner]()
	deadline := time.Now().Add(15 * time.Second)
	for state(t, havipc, ctx, hv.GetHavipId()).GetState() == "BIND" {
		if time.Now().After(deadline) {
			t.Fatalf("the ownership did not lapse: %v", state(t, havipc, ctx, hv.GetHavipId()))
		}
		time.Sleep(50 * time.Millisecond) // polling for the session's end
	}
	lapsed := time.Now().Add(250 * time.Millisecond)
	vpcProbe.awaitProbes(t, 200)
	bySource := map[string]*prober{vms[4].IP: vpcProbe, fabric.InternetClient: netProbe}
	sameHost := vms[4].Host.ID == owner
	if sameHost {
		delete(probers, "VPC client → VIP")
		t.Logf("the new MASTER is on the client's host: only the internet's probes are checked after the lapse")
	}
	for _, r := range resp {
		for _, got := range r.received() {
			p := bySource[got.from]
			if p == nil {
				t.Errorf("%s received a probe from %s", r.name, got.from)
				continue
			}
			if sameHost && got.from == vms[4].IP {
				continue
			}
			if got.seq < p.next() && p.sentAt(got.seq).After(lapsed) {
				t.Errorf("%s received probe %d from %s, sent %v after the lapse", r.name, got.seq, got.from, p.sentAt(got.seq).Sub(lapsed))
				break
			}
		}
	}
	for name, p := range probers {
		first := p.seqAfter(lapsed)
		if got := p.answers(first, p.next()); len(got) != 0 {
			t.Errorf("%s: after the lapse, probes answered by %v", name, got)
		}
	}

	// Throughout: VM3 and VM4, outside the range, never received a probe; the internet's
	// answers came from the EIP.
	for _, i := range []int{2, 3} {
		if got := resp[i].received(); len(got) != 0 {
			t.Errorf("%s, outside the switch range, received %d probes", names[i], len(got))
		}
	}
	if !fabric.HasVIP(t, vms[next].NS, vip) {
		t.Errorf("the last MASTER does not hold the VIP after the lapse, so the lapse proves nothing")
	}
	for _, i := range []int{2, 3} {
		if !fabric.HasVIP(t, vms[i].NS, vip) {
			t.Errorf("%s does not hold the VIP, so it proves nothing", names[i])
		}
	}
	netProbe.mu.Lock()
	if len(netProbe.badSource) > 0 || len(netProbe.by) == 0 {
		t.Errorf("the internet client got %d answers, %d not from the EIP %s: %v", len(netProbe.by), len(netProbe.badSource), eipIP, netProbe.badSource)
	}
	netProbe.mu.Unlock()
}

func state(t testing.TB, c havipv1.HaVipServiceClient, ctx context.Context, id string) *havipv1.HaVip {
	t.Helper()
	return etcdtest.Must[*havipv1.DescribeHaVipsResponse](t)(c.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{id}})).GetHavipSet()[0]
}
