package dataplane_test

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	clientv3 "go.etcd.io/etcd/client/v3"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/integration/fabric"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/loadtest"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/arpbroker/hostroute"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

func quantile(d []time.Duration, q float64) time.Duration {
	d = append([]time.Duration(nil), d...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*q)]
}

// routeLog follows the router's routes of a host namespace through a netlink subscription:
// per VIP, where its route goes ("dev <index>", "via <gw>", "" once deleted) and since when.
type routeLog struct {
	mu      sync.Mutex
	at      map[netip.Addr]time.Time
	to      map[netip.Addr]string
	changed chan struct{}
}

func followRoutes(b *testing.B, ns string) *routeLog {
	b.Helper()
	l := &routeLog{at: map[netip.Addr]time.Time{}, to: map[netip.Addr]string{}, changed: make(chan struct{}, 1)}
	n, err := netns.GetFromName(ns)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Close() })
	updates, done := make(chan netlink.RouteUpdate, 4096), make(chan struct{})
	b.Cleanup(func() { close(done) })
	report := func(err error) {
		select {
		case <-done: // closing the subscription at the end
		default:
			b.Errorf("route subscription of %s: %v", ns, err)
		}
	}
	if err := netlink.RouteSubscribeWithOptions(updates, done, netlink.RouteSubscribeOptions{Namespace: &n, ReceiveBufferSize: 32 << 20, ErrorCallback: report}); err != nil {
		b.Fatal(err)
	}
	go func() {
		for u := range updates {
			now := time.Now()
			if u.Protocol != hostroute.DefaultProtocol || u.Dst == nil {
				continue
			}
			vip, _ := netip.AddrFromSlice(u.Dst.IP.To4())
			to := ""
			switch {
			case u.Type != 24: // RTM_NEWROUTE
			case u.Gw != nil:
				to = "via " + u.Gw.String()
			default:
				to = fmt.Sprintf("dev %d", u.LinkIndex)
			}
			l.mu.Lock()
			l.at[vip], l.to[vip] = now, to
			l.mu.Unlock()
			select {
			case l.changed <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

// await waits until every VIP of vips goes to want, and returns when the last one got there.
func (l *routeLog) await(b *testing.B, vips []netip.Addr, want string, within time.Duration) time.Time {
	b.Helper()
	deadline := time.After(within)
	for {
		l.mu.Lock()
		var last time.Time
		missing := 0
		for _, v := range vips {
			if l.to[v] != want {
				missing++
			} else if l.at[v].After(last) {
				last = l.at[v]
			}
		}
		l.mu.Unlock()
		if missing == 0 {
			return last
		}
		select {
		case <-l.changed:
		case <-deadline:
			b.Fatalf("%d of %d routes not %q within %v", missing, len(vips), want, within)
		}
	}
}

// BenchmarkRoutes measures the host side on real services and real routing tables, three hosts
// of the fabric each running a router:
//
//   - owner-to-routes: from an owner change's claim (sent to the broker, which decides and
//     commits it) to the VIP's route programmed on every host, 500 changes one after another,
//     next to the raw etcd watch delivery (a put to its event on a watch) in the same run;
//   - failover-1000: 1,000 VIPs changing owner at once (1,000 claims in flight), until every
//     host has every new route;
//   - coldstart-10000: a router starting on a host with no routes, 10,000 owned VIPs, until all
//     10,000 routes are in its table.
func BenchmarkRoutes(b *testing.B) {
	conn, _ := etcdtest.Serve(b, etcdEndpoint, ipam.Module, service.Must(havip.NewModule(havip.Config{})), service.Must(arpbroker.NewModule(arpbroker.Config{HoldDown: time.Nanosecond})))
	ipamc, havipc := ipamv1.NewIpamServiceClient(conn), havipv1.NewHaVipServiceClient(conn)
	cli := etcdtest.Client(b, etcdEndpoint)
	for range b.N {
		tag := ids.New("")[1:7]
		ctx := tenant.Outgoing(context.Background(), "acct-dpbench"+tag)
		hostIDs := []string{"host-a" + tag, "host-b" + tag, "host-c" + tag}
		vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](b)(ipamc.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
		subnet := etcdtest.Must[*ipamv1.CreateSubnetResponse](b)(ipamc.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.64.0/18"})).GetSubnet()
		f := fabric.New(b, "10.0.0.0/16", subnet.GetGatewayIpAddress(), hostIDs...)
		type owner struct {
			eni     *ipamv1.NetworkInterface
			agentID string
			agent   arpbrokerv1.ArpBrokerServiceClient
			session int64
			port    int // the index of its port on its host
		}
		var owners []owner // one VM on host A, one on host B
		for i := range 2 {
			eni := etcdtest.Must[*ipamv1.CreateInstanceResponse](b)(ipamc.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "vm", SubnetId: subnet.GetSubnetId(), HostId: hostIDs[i]})).GetPrimaryNetworkInterface()
			vm := f.AddVM(f.Hosts[i], fmt.Sprintf("vm%d", i), eni.GetNetworkInterfaceId(), eni.GetMacAddress(), eni.GetPrimaryIpAddress(), 18)
			port, err := handleIn(b, f.Hosts[i].NS).LinkByName(vm.Port)
			if err != nil {
				b.Fatal(err)
			}
			agent := arpbrokerv1.NewArpBrokerServiceClient(etcdtest.DialAs(b, conn.Target(), mtlstest.Agent(hostIDs[i])))
			s := etcdtest.Must[*arpbrokerv1.OpenSessionResponse](b)(agent.OpenSession(context.Background(), &arpbrokerv1.OpenSessionRequest{AgentId: "agent-" + hostIDs[i], HostId: hostIDs[i], TtlSeconds: 60})).GetSessionId()
			owners = append(owners, owner{eni, "agent-" + hostIDs[i], agent, s, port.Attrs().Index})
		}
		claim := func(o owner, vip string) error {
			r, err := o.agent.ReportArpAnnouncement(context.Background(), &arpbrokerv1.ReportArpAnnouncementRequest{
				AgentId: o.agentID, SessionId: o.session, NetworkInterfaceId: o.eni.GetNetworkInterfaceId(),
				EthernetSourceMac: o.eni.GetMacAddress(), SenderMac: o.eni.GetMacAddress(), SenderIp: vip, TargetIp: vip, Operation: arpbrokerv1.ArpOperation_ARP_OPERATION_REQUEST,
			})
			if err == nil && r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED {
				err = fmt.Errorf("claim of %s by %s: %v", vip, o.eni.GetNetworkInterfaceId(), r)
			}
			return err
		}
		// where is the route a host has for a VIP owned by owners[i].
		where := func(host, i int) string {
			if host == i {
				return fmt.Sprintf("dev %d", owners[i].port)
			}
			return "via " + f.Hosts[i].Underlay.String()
		}
		logs := make([]*routeLog, 3)
		startRouter := func(h int) {
			logs[h] = followRoutes(b, f.Hosts[h].NS)
			r := hostroute.New(hostroute.Config{HostID: f.Hosts[h].ID, VPC: vpc, Ports: f.Hosts[h].Ports, Hosts: f.Underlays()}, handleIn(b, f.Hosts[h].NS), etcdtest.Quiet)
			client := arpbrokerv1.NewArpBrokerServiceClient(etcdtest.DialAs(b, conn.Target(), mtlstest.Agent(f.Hosts[h].ID)))
			background(b, func(ctx context.Context) error { return r.Run(ctx, client) })
		}
		startRouter(0)
		startRouter(1)

		const n, many = 1000, 10000
		f1 := false
		havips := make([]netip.Addr, many)
		loadtest.Throughput(b, 50, many, func(i int) error {
			h, err := havipc.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: subnet.GetSubnetId(), HavipName: "b", CheckAssociate: &f1})
			if err == nil {
				havips[i] = netip.MustParseAddr(h.GetHavip().GetVip())
			}
			return err
		})

		// The raw etcd watch delivery, then owner changes one after another.
		const samples = 500
		watch := cli.Watch(context.Background(), "/bench/dataplane/"+tag+"/", clientv3.WithPrefix())
		raw := make([]time.Duration, samples)
		for i := range raw {
			t0 := time.Now()
			if _, err := cli.Put(context.Background(), fmt.Sprintf("/bench/dataplane/%s/%d", tag, i), "x"); err != nil {
				b.Fatal(err)
			}
			if _, ok := <-watch; !ok {
				b.Fatal("watch ended")
			}
			raw[i] = time.Since(t0)
		}
		change := make([]time.Duration, samples)
		vip := havips[0]
		for i := range change {
			o := i % 2
			t0 := time.Now()
			if err := claim(owners[o], vip.String()); err != nil {
				b.Fatal(err)
			}
			last := logs[0].await(b, []netip.Addr{vip}, where(0, o), 10*time.Second)
			if l := logs[1].await(b, []netip.Addr{vip}, where(1, o), 10*time.Second); l.After(last) {
				last = l
			}
			change[i] = last.Sub(t0)
		}

		// 1,000 VIPs owned on host A move to host B at once.
		batch := havips[1 : n+1]
		loadtest.Throughput(b, 50, n, func(i int) error { return claim(owners[0], batch[i].String()) })
		logs[0].await(b, batch, where(0, 0), 10*time.Second)
		logs[1].await(b, batch, where(1, 0), 10*time.Second)
		t0 := time.Now()
		loadtest.Throughput(b, n, n, func(i int) error { return claim(owners[1], batch[i].String()) })
		last := logs[0].await(b, batch, where(0, 1), 10*time.Second)
		if l := logs[1].await(b, batch, where(1, 1), 10*time.Second); l.After(last) {
			last = l
		}
		failover := last.Sub(t0)

		// Every VIP owned (on host A), then host C's router starts cold.
		loadtest.Throughput(b, 50, many, func(i int) error { return claim(owners[0], havips[i].String()) })
		logs[1].await(b, havips, where(1, 0), 60*time.Second)
		t0 = time.Now()
		startRouter(2)
		cold := logs[2].await(b, havips, "via "+f.Hosts[0].Underlay.String(), 30*time.Second).Sub(t0)

		b.ReportMetric(float64(quantile(raw, 0.5).Microseconds()), "raw-watch-p50-µs")
		b.ReportMetric(float64(quantile(raw, 0.99).Microseconds()), "raw-watch-p99-µs")
		b.ReportMetric(float64(quantile(change, 0.5).Microseconds()), "owner-to-routes-p50-µs")
		b.ReportMetric(float64(quantile(change, 0.99).Microseconds()), "owner-to-routes-p99-µs(target<=50000)")
		b.ReportMetric(float64(failover.Milliseconds()), "failover-1000-ms(target<=1000)")
		b.ReportMetric(float64(cold.Milliseconds()), "coldstart-10000-ms(target<=5000)")
	}
}
