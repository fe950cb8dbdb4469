package hostroute_test

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/services/arpbroker/hostroute"
)

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// host makes a network namespace with two VM ports (veths p1, p2) and an underlay link
// ul0 on 192.168.50.1/24, and returns a netlink handle in it and its name.
func host(t *testing.T) (*netlink.Handle, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	name := "hr" + ids.New("")[1:9]
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	for _, l := range []string{"p1", "p2", "ul0"} {
		run(t, "ip", "-n", name, "link", "add", l, "type", "veth", "peer", "name", l+"x")
		run(t, "ip", "-n", name, "link", "set", l, "up")
		run(t, "ip", "-n", name, "link", "set", l+"x", "up")
	}
	run(t, "ip", "-n", name, "addr", "add", "192.168.50.1/24", "dev", "ul0")
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ns.Close() }()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, name
}

// routes is the host's routes of the router's protocol: VIP → "dev <port>" or "via <gw>".
func routes(t *testing.T, h *netlink.Handle) map[string]string {
	t.Helper()
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: hostroute.DefaultProtocol, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rs {
		if r.Gw != nil {
			out[r.Dst.IP.String()] = "via " + r.Gw.String()
			continue
		}
		l, err := h.LinkByIndex(r.LinkIndex)
		if err != nil {
			t.Fatal(err)
		}
		out[r.Dst.IP.String()] = "dev " + l.Attrs().Name
	}
	return out
}

func check(t *testing.T, h *netlink.Handle, want map[string]string) {
	t.Helper()
	got := routes(t, h)
	if len(got) != len(want) {
		t.Fatalf("routes %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("routes %v, want %v", got, want)
		}
	}
}

// vpc is the VPC the router serves.
const vpc = "vpc-11111111"

func own(havip, vip, eni, host string, rev int64) *arpbrokerv1.Ownership {
	return &arpbrokerv1.Ownership{HavipId: havip, Vip: vip, NetworkInterfaceId: eni, HostId: host, Revision: rev, VpcId: vpc}
}

var cfg = hostroute.Config{HostID: "h1", VPC: vpc, Ports: map[string]string{"p1": "eni-1", "p2": "eni-2"}, Hosts: map[string]netip.Addr{"h2": netip.MustParseAddr("192.168.50.2")}}

// TestApply: a VIP owned on this host goes to its owner's port, one owned on another host via
// that host; a stale change is ignored; a lapse removes the route.
func TestApply(t *testing.T) {
	h, _ := host(t)
	r := hostroute.New(cfg, h, etcdtest.Quiet)
	if err := r.Apply([]*arpbrokerv1.Ownership{own("havip-a", "10.0.0.10", "eni-1", "h1", 10), own("havip-b", "10.0.0.11", "eni-9", "h2", 11)}); err != nil {
		t.Fatal(err)
	}
	check(t, h, map[string]string{"10.0.0.10": "dev p1", "10.0.0.11": "via 192.168.50.2"})
	// havip-a moves to p2, then a stale change (revision 11, to p1) arrives: ignored.
	if err := r.Apply([]*arpbrokerv1.Ownership{own("havip-a", "10.0.0.10", "eni-2", "h1", 12), own("havip-a", "10.0.0.10", "eni-1", "h1", 11)}); err != nil {
		t.Fatal(err)
	}
	check(t, h, map[string]string{"10.0.0.10": "dev p2", "10.0.0.11": "via 192.168.50.2"})
	// havip-b moves here; havip-a lapses (no VIP, no ENI): its route goes.
	if err := r.Apply([]*arpbrokerv1.Ownership{own("havip-b", "10.0.0.11", "eni-1", "h1", 13), {HavipId: "havip-a", Revision: 14}}); err != nil {
		t.Fatal(err)
	}
	check(t, h, map[string]string{"10.0.0.11": "dev p1"})
	// An owner on a host with no underlay address: an error, and no route.
	if err := r.Apply([]*arpbrokerv1.Ownership{own("havip-b", "10.0.0.11", "eni-7", "h7", 15)}); err == nil {
		t.Error("no error for an unknown host")
	}
	check(t, h, map[string]string{})
}

// TestSyncKeepsUnchangedRoutes: a restarted router reconciles from a snapshot: it adds what is
// missing, moves what changed, deletes its routes no owner wants any more, leaves other routes
// alone, and never touches a route that is already right (no kernel route event for it).
func TestSyncKeepsUnchangedRoutes(t *testing.T) {
	h, name := host(t)
	first := hostroute.New(cfg, h, etcdtest.Quiet)
	if err := first.Apply([]*arpbrokerv1.Ownership{own("havip-a", "10.0.0.10", "eni-1", "h1", 10), own("havip-b", "10.0.0.11", "eni-2", "h1", 11), own("havip-c", "10.0.0.12", "eni-1", "h2", 12)}); err != nil {
		t.Fatal(err)
	}
	foreign := &netlink.Route{Dst: &net.IPNet{IP: net.IPv4(10, 0, 0, 99), Mask: net.CIDRMask(32, 32)}, Gw: net.IPv4(192, 168, 50, 9)}
	if err := h.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}

	updates, done := make(chan netlink.RouteUpdate, 64), make(chan struct{})
	defer close(done)
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ns.Close() }()
	if err := netlink.RouteSubscribeAt(ns, updates, done); err != nil {
		t.Fatal(err)
	}

	// The restart: a new router, a snapshot where havip-a is unchanged, havip-b moved to h2,
	// havip-c has no owner any more and havip-d is new.
	second := hostroute.New(cfg, h, etcdtest.Quiet)
	if err := second.Sync([]*arpbrokerv1.Ownership{own("havip-a", "10.0.0.10", "eni-1", "h1", 10), own("havip-b", "10.0.0.11", "eni-5", "h2", 20), own("havip-d", "10.0.0.13", "eni-2", "h1", 21)}); err != nil {
		t.Fatal(err)
	}
	check(t, h, map[string]string{"10.0.0.10": "dev p1", "10.0.0.11": "via 192.168.50.2", "10.0.0.13": "dev p2"})
	if _, err := h.RouteGet(net.IPv4(10, 0, 0, 99)); err != nil {
		t.Errorf("the foreign route is gone: %v", err)
	}
	// The events of the sync: one for each of .11, .12, .13, none for .10. A marker route
	// added afterwards bounds the wait.
	marker := &netlink.Route{Dst: &net.IPNet{IP: net.IPv4(10, 0, 0, 200), Mask: net.CIDRMask(32, 32)}, Gw: net.IPv4(192, 168, 50, 9)}
	if err := h.RouteAdd(marker); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for {
		select {
		case u := <-updates:
			if u.Dst == nil {
				continue
			}
			if ip := u.Dst.IP.String(); ip != "10.0.0.200" {
				seen[ip] = true
				continue
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event for the marker route; saw %v", seen)
		}
		break
	}
	if seen["10.0.0.10"] || !seen["10.0.0.11"] || !seen["10.0.0.12"] || !seen["10.0.0.13"] {
		t.Errorf("route events during the sync %v; want .11, .12 and .13, never .10", seen)
	}
}

// TestSyncIsFenced: a snapshot replaces the router's state but not a change newer than its entry
// for a HAVIP: the newer route stays, and a change older than it is still ignored afterwards.
func TestSyncIsFenced(t *testing.T) {
	h, _ := host(t)
	r := hostroute.New(cfg, h, etcdtest.Quiet)
	if err := r.Apply([]*arpbrokerv1.Ownership{own("havip-a", "10.0.0.10", "eni-2", "h1", 20), own("havip-c", "10.0.0.12", "eni-1", "h1", 21)}); err != nil {
		t.Fatal(err)
	}
	// The snapshot has havip-a at an older revision (on p1), havip-b new, and no havip-c.
	if err := r.Sync([]*arpbrokerv1.Ownership{own("havip-a", "10.0.0.10", "eni-1", "h1", 10), own("havip-b", "10.0.0.11", "eni-9", "h2", 11)}); err != nil {
		t.Fatal(err)
	}
	check(t, h, map[string]string{"10.0.0.10": "dev p2", "10.0.0.11": "via 192.168.50.2"})
	if err := r.Apply([]*arpbrokerv1.Ownership{own("havip-a", "10.0.0.10", "eni-1", "h1", 15)}); err != nil {
		t.Fatal(err)
	}
	check(t, h, map[string]string{"10.0.0.10": "dev p2", "10.0.0.11": "via 192.168.50.2"})
}

// TestRetry: a route the kernel refuses (the underlay link down, so the owner's host is out of
// reach) is programmed again once it can be, and a newer ownership is never undone by it.
func TestRetry(t *testing.T) {
	h, name := host(t)
	r := hostroute.New(cfg, h, etcdtest.Quiet)
	run(t, "ip", "-n", name, "link", "set", "ul0", "down")
	if err := r.Apply([]*arpbrokerv1.Ownership{own("havip-b", "10.0.0.11", "eni-9", "h2", 11), own("havip-c", "10.0.0.12", "eni-9", "h2", 12)}); err == nil {
		t.Fatal("no error for a route via an unreachable host")
	}
	check(t, h, map[string]string{})
	if err := r.Retry(); err == nil {
		t.Error("no error while the host is still out of reach")
	}
	// havip-c moves to this host meanwhile: its failed route is not retried.
	if err := r.Apply([]*arpbrokerv1.Ownership{own("havip-c", "10.0.0.12", "eni-2", "h1", 13)}); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "-n", name, "link", "set", "ul0", "up")
	if err := r.Retry(); err != nil {
		t.Fatal(err)
	}
	check(t, h, map[string]string{"10.0.0.11": "via 192.168.50.2", "10.0.0.12": "dev p2"})
	// Nothing is left to retry: a lapse of havip-b stays a lapse.
	if err := r.Apply([]*arpbrokerv1.Ownership{{HavipId: "havip-b", Revision: 14}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Retry(); err != nil {
		t.Fatal(err)
	}
	check(t, h, map[string]string{"10.0.0.12": "dev p2"})
	// The same for a snapshot's route.
	run(t, "ip", "-n", name, "link", "set", "ul0", "down")
	if err := r.Sync([]*arpbrokerv1.Ownership{own("havip-c", "10.0.0.12", "eni-2", "h1", 13), own("havip-d", "10.0.0.13", "eni-9", "h2", 15)}); err == nil {
		t.Fatal("no error for a snapshot's route via an unreachable host")
	}
	check(t, h, map[string]string{"10.0.0.12": "dev p2"})
	run(t, "ip", "-n", name, "link", "set", "ul0", "up")
	if err := r.Retry(); err != nil {
		t.Fatal(err)
	}
	check(t, h, map[string]string{"10.0.0.12": "dev p2", "10.0.0.13": "via 192.168.50.2"})
}

// TestOtherVPCs: a HAVIP of another VPC with the same VIP (VPCs may overlap) never takes the
// VPC's route, nor removes it when it lapses; nor does a snapshot with it.
func TestOtherVPCs(t *testing.T) {
	h, _ := host(t)
	r := hostroute.New(cfg, h, etcdtest.Quiet)
	if err := r.Apply([]*arpbrokerv1.Ownership{own("havip-a", "10.0.0.10", "eni-1", "h1", 10)}); err != nil {
		t.Fatal(err)
	}
	theirs := own("havip-x", "10.0.0.10", "eni-9", "h2", 11)
	theirs.VpcId = "vpc-22222222"
	if err := r.Apply([]*arpbrokerv1.Ownership{theirs, {HavipId: "havip-x", Revision: 12}}); err != nil {
		t.Fatal(err)
	}
	check(t, h, map[string]string{"10.0.0.10": "dev p1"})
	if err := r.Sync([]*arpbrokerv1.Ownership{theirs}); err != nil {
		t.Fatal(err)
	}
	check(t, h, map[string]string{})
	if err := r.Sync([]*arpbrokerv1.Ownership{theirs, own("havip-a", "10.0.0.10", "eni-2", "h1", 13)}); err != nil {
		t.Fatal(err)
	}
	check(t, h, map[string]string{"10.0.0.10": "dev p2"})
}
