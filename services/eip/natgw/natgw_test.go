package natgw_test

import (
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/services/eip/natgw"
)

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// gatewayNS makes a network namespace with an underlay link on 192.168.60.254/24 and returns
// a gateway programming it.
func gatewayNS(t *testing.T) (*natgw.Gateway, *nftables.Conn, *netlink.Handle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	name := "ng" + ids.New("")[1:9]
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0x")
	run(t, "ip", "-n", name, "link", "set", "ul0", "up")
	run(t, "ip", "-n", name, "link", "set", "ul0x", "up")
	run(t, "ip", "-n", name, "addr", "add", "192.168.60.254/24", "dev", "ul0")
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	nft, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	hosts := map[string]netip.Addr{"h1": netip.MustParseAddr("192.168.60.1"), "h2": netip.MustParseAddr("192.168.60.2")}
	return natgw.New(natgw.Config{VPC: vpc, Hosts: hosts}, nft, h, etcdtest.Quiet), nft, h
}

// state is what the kernel has: "pub>private via gw" per DNAT, "pub dark" per drop.
func state(t *testing.T, nft *nftables.Conn, h *netlink.Handle) []string {
	t.Helper()
	table := &nftables.Table{Name: natgw.DefaultTable, Family: nftables.TableFamilyIPv4}
	via := map[netip.Addr]string{}
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: natgw.DefaultProtocol, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		a, _ := netip.AddrFromSlice(r.Dst.IP.To4())
		via[a] = r.Gw.String()
	}
	var out []string
	for _, name := range []string{"dnat", "dark"} {
		s, err := nft.GetSetByName(table, name)
		if err != nil {
			t.Fatal(err)
		}
		es, err := nft.GetSetElements(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			pub, _ := netip.AddrFromSlice(e.Key)
			if name == "dark" {
				out = append(out, pub.String()+" dark")
				continue
			}
			priv, _ := netip.AddrFromSlice(e.Val)
			out = append(out, pub.String()+">"+priv.String()+" via "+via[priv])
			delete(via, priv)
		}
	}
	for priv := range via {
		out = append(out, "stray route "+priv.String())
	}
	sort.Strings(out)
	return out
}

func check(t *testing.T, nft *nftables.Conn, h *netlink.Handle, want ...string) {
	t.Helper()
	got := state(t, nft, h)
	sort.Strings(want)
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("kernel state\n  %s\nwant\n  %s", strings.Join(got, "; "), strings.Join(want, "; "))
	}
}

// vpc is the VPC the gateway serves.
const vpc = "vpc-11111111"

func rule(pub, priv, host string, binding, owner int64) *eipv1.NatRule {
	r := &eipv1.NatRule{AddressId: "eip-" + pub, PublicIp: pub, PrivateIp: priv, HostId: host, BindingRevision: binding, OwnerRevision: owner}
	if host != "" {
		r.NetworkInterfaceId, r.InstanceId, r.VpcId = "eni-1", "ins-1", vpc
	}
	return r
}

// TestGateway: a snapshot builds the table; an EIP follows its backend's host; a stale rule is
// ignored; with no backend the EIP is dropped and its route goes; an unbound EIP leaves nothing;
// a new snapshot (a restart) keeps what is unchanged and removes what is gone.
func TestGateway(t *testing.T) {
	g, nft, h := gatewayNS(t)
	if err := g.Sync([]*eipv1.NatRule{rule("203.0.113.1", "10.0.0.10", "h1", 5, 6), rule("203.0.113.2", "10.0.0.11", "", 7, 0)}); err != nil {
		t.Fatal(err)
	}
	check(t, nft, h, "203.0.113.1>10.0.0.10 via 192.168.60.1", "203.0.113.2 dark")

	// .1 moves to h2; then a stale rule (owner revision 7 < 9) back to h1.
	if err := g.Apply([]*eipv1.NatRule{rule("203.0.113.1", "10.0.0.10", "h2", 5, 9), rule("203.0.113.1", "10.0.0.10", "h1", 5, 7)}); err != nil {
		t.Fatal(err)
	}
	check(t, nft, h, "203.0.113.1>10.0.0.10 via 192.168.60.2", "203.0.113.2 dark")

	// .1's owner lapses: dark, no route. .2 gets a backend on h1.
	if err := g.Apply([]*eipv1.NatRule{rule("203.0.113.1", "10.0.0.10", "", 5, 10), rule("203.0.113.2", "10.0.0.11", "h1", 7, 11)}); err != nil {
		t.Fatal(err)
	}
	check(t, nft, h, "203.0.113.1 dark", "203.0.113.2>10.0.0.11 via 192.168.60.1")

	// .1 is unbound: nothing left of it; a stale rule of its old binding does not bring it back.
	removed := &eipv1.NatRule{AddressId: "eip-1", PublicIp: "203.0.113.1", BindingRevision: 12, Removed: true}
	if err := g.Apply([]*eipv1.NatRule{removed, rule("203.0.113.1", "10.0.0.10", "h1", 5, 13)}); err != nil {
		t.Fatal(err)
	}
	check(t, nft, h, "203.0.113.2>10.0.0.11 via 192.168.60.1")

	// A restart: a new gateway, a snapshot where .2 is as it was and .3 is new.
	g2 := natgw.New(natgw.Config{VPC: vpc, Hosts: map[string]netip.Addr{"h1": netip.MustParseAddr("192.168.60.1")}}, nft, h, etcdtest.Quiet)
	if err := g2.Sync([]*eipv1.NatRule{rule("203.0.113.2", "10.0.0.11", "h1", 7, 11), rule("203.0.113.3", "10.0.0.12", "h1", 14, 15)}); err != nil {
		t.Fatal(err)
	}
	check(t, nft, h, "203.0.113.2>10.0.0.11 via 192.168.60.1", "203.0.113.3>10.0.0.12 via 192.168.60.1")

	// A host with no underlay address: an error, and the EIP is dropped.
	if err := g2.Apply([]*eipv1.NatRule{rule("203.0.113.3", "10.0.0.12", "h9", 14, 16)}); err == nil {
		t.Error("no error for a host with no underlay address")
	}
	check(t, nft, h, "203.0.113.2>10.0.0.11 via 192.168.60.1", "203.0.113.3 dark")
}

// TestSyncIsFenced: a snapshot replaces the gateway's state but not a rule newer than its entry
// for a public IP; an EIP the snapshot does not name is gone.
func TestSyncIsFenced(t *testing.T) {
	g, nft, h := gatewayNS(t)
	if err := g.Sync(nil); err != nil { // a stream starts with its snapshot
		t.Fatal(err)
	}
	if err := g.Apply([]*eipv1.NatRule{rule("203.0.113.1", "10.0.0.10", "h2", 5, 9), rule("203.0.113.4", "10.0.0.14", "h1", 6, 9)}); err != nil {
		t.Fatal(err)
	}
	check(t, nft, h, "203.0.113.1>10.0.0.10 via 192.168.60.2", "203.0.113.4>10.0.0.14 via 192.168.60.1")
	// The snapshot has .1 at an older owner revision (on h1), .2 dark, and no .4.
	if err := g.Sync([]*eipv1.NatRule{rule("203.0.113.1", "10.0.0.10", "h1", 5, 6), rule("203.0.113.2", "10.0.0.11", "", 7, 0)}); err != nil {
		t.Fatal(err)
	}
	check(t, nft, h, "203.0.113.1>10.0.0.10 via 192.168.60.2", "203.0.113.2 dark")
	if err := g.Apply([]*eipv1.NatRule{rule("203.0.113.1", "10.0.0.10", "h1", 5, 8)}); err != nil {
		t.Fatal(err)
	}
	check(t, nft, h, "203.0.113.1>10.0.0.10 via 192.168.60.2", "203.0.113.2 dark")
}

// TestRetry: a route the kernel refuses (the underlay link down) is programmed by Retry once
// the link is back, with the rules newest by then.
func TestRetry(t *testing.T) {
	g, nft, h := gatewayNS(t)
	if err := g.Sync(nil); err != nil {
		t.Fatal(err)
	}
	ul, err := h.LinkByName("ul0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetDown(ul); err != nil {
		t.Fatal(err)
	}
	if err := g.Apply([]*eipv1.NatRule{rule("203.0.113.1", "10.0.0.10", "h1", 5, 6)}); err == nil {
		t.Fatal("no error for a route via an unreachable host")
	}
	check(t, nft, h, "203.0.113.1>10.0.0.10 via ")
	if err := g.Retry(); err == nil {
		t.Error("no error while the host is still out of reach")
	}
	if err := h.LinkSetUp(ul); err != nil {
		t.Fatal(err)
	}
	if err := g.Retry(); err != nil {
		t.Fatal(err)
	}
	check(t, nft, h, "203.0.113.1>10.0.0.10 via 192.168.60.1")
}

// TestOtherVPCs: an EIP whose backend is in another VPC (whose private IPs may be this VPC's
// too) is dropped, never routed into this fabric, and takes no route of this VPC's EIPs.
func TestOtherVPCs(t *testing.T) {
	g, nft, h := gatewayNS(t)
	theirs := rule("203.0.113.9", "10.0.0.10", "h2", 3, 4)
	theirs.VpcId = "vpc-22222222"
	if err := g.Sync([]*eipv1.NatRule{rule("203.0.113.1", "10.0.0.10", "h1", 5, 6), theirs}); err != nil {
		t.Fatal(err)
	}
	check(t, nft, h, "203.0.113.1>10.0.0.10 via 192.168.60.1", "203.0.113.9 dark")
}
