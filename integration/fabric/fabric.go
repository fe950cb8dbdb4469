// Package fabric builds a VPC fabric in network namespaces for tests: hosts on an underlay, each VM on a point-to-point port of its host, no layer 2 between VMs.
//
//	internet ──(198.51.100.0/24)── gateway (natd) 192.168.100.254
//	                                   │
//	              underlay bridge (192.168.100.0/24, inside its own namespace)
//	              │                                        │
//	    host A 192.168.100.1                      host B 192.168.100.2
//	    10.0.0.1/32 on lo, proxy ARP on ports     (the same)
//	    10.0.0.x/32 dev pN   (its VMs)            10.0.0.y/32 dev pN
//	    10.0.0.y/32 via B    (B's VMs)            10.0.0.x/32 via A
//	    unreachable 10.0.0.0/16, default via the gateway
//	    │ pN (veth)                               │ pN
//	    VM (eth0 = ENI MAC and IP, default via 10.0.0.1)
//
// Each host answers its VMs' ARP itself (proxy ARP on the port, 10.0.0.1 on its loopback) and
// routes to them by /32 routes; a VM's frames, gratuitous ARP included, reach only its host. A
// VIP is therefore reachable only where a /32 route for it is programmed (hostroute does), and
// an EIP only where the gateway translates it (natd does).
package fabric

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openhavip/havip/platform/ids"
)

// Addresses of the fabric.
const (
	// Underlay is the hosts' network; host i (from 0) is .i+1, the gateway .254.
	Underlay = "192.168.100.0/24"
	// GatewayUnderlay is the gateway's underlay address.
	GatewayUnderlay = "192.168.100.254"
	// InternetClient is the address of the internet namespace; the gateway is .1 on its link.
	InternetClient = "198.51.100.2"
	internetGW     = "198.51.100.1"
)

// Fabric is a VPC fabric in network namespaces, deleted when the test ends.
type Fabric struct {
	tb       testing.TB
	tag      string
	vpc      string // the VPC's CIDR
	gw       string // the subnet gateway every host answers for
	underlay string // the namespace of the underlay bridge
	// Gateway is the namespace of the EIP gateway; Internet that of a client on the internet,
	// routing the public pool through the gateway.
	Gateway, Internet string
	Hosts             []*Host
	vms               []*VM
}

// Host is a hypervisor: a namespace on the underlay.
type Host struct {
	ID       string // the host ID, as ipamd knows it
	NS       string
	Underlay netip.Addr
	// Ports maps each VM port of the host to the ENI behind it.
	Ports map[string]string
}

// VM is a VM: a namespace whose eth0 is a port of its host.
type VM struct {
	Name, NS, Port string
	Host           *Host
	IP             string
}

// Run runs a command and fails the test with its output if it fails.
func Run(tb testing.TB, args ...string) {
	tb.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		tb.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// In runs fn on an OS thread inside the network namespace ns; the sockets it opens stay there.
// The thread is dropped afterwards, never reused in the wrong namespace.
func In(tb testing.TB, ns string, fn func() error) {
	tb.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer func() { _ = f.Close() }()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
}

func (f *Fabric) netns(name string) string {
	f.tb.Helper()
	Run(f.tb, "ip", "netns", "add", name)
	f.tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	Run(f.tb, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func (f *Fabric) sysctl(ns string, kv ...string) {
	f.tb.Helper()
	Run(f.tb, append([]string{"ip", "netns", "exec", ns, "sysctl", "-qw"}, kv...)...)
}

// New builds the underlay, the gateway, the internet namespace and one host per ID, for a VPC
// of cidr whose subnets' gateway address is gw. It needs root.
func New(tb testing.TB, cidr, gw string, hostIDs ...string) *Fabric {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("the fabric needs root for network namespaces")
	}
	f := &Fabric{tb: tb, tag: ids.New("")[1:7], vpc: cidr, gw: gw}
	f.underlay = f.netns("fu" + f.tag)
	Run(tb, "ip", "-n", f.underlay, "link", "add", "br0", "type", "bridge")
	Run(tb, "ip", "-n", f.underlay, "link", "set", "br0", "up")
	// attach joins ns to the underlay bridge as ul0 with addr.
	attach := func(ns, leg, addr string) {
		Run(tb, "ip", "-n", f.underlay, "link", "add", leg, "type", "veth", "peer", "name", "ul0", "netns", ns)
		Run(tb, "ip", "-n", f.underlay, "link", "set", leg, "master", "br0")
		Run(tb, "ip", "-n", f.underlay, "link", "set", leg, "up")
		Run(tb, "ip", "-n", ns, "addr", "add", addr+"/24", "dev", "ul0")
		Run(tb, "ip", "-n", ns, "link", "set", "ul0", "up")
	}

	f.Gateway = f.netns("fg" + f.tag)
	f.sysctl(f.Gateway, "net.ipv4.ip_forward=1")
	attach(f.Gateway, "gw", GatewayUnderlay)
	f.Internet = f.netns("fi" + f.tag)
	Run(tb, "ip", "-n", f.Gateway, "link", "add", "inet0", "type", "veth", "peer", "name", "eth0", "netns", f.Internet)
	Run(tb, "ip", "-n", f.Gateway, "addr", "add", internetGW+"/24", "dev", "inet0")
	Run(tb, "ip", "-n", f.Gateway, "link", "set", "inet0", "up")
	Run(tb, "ip", "-n", f.Internet, "addr", "add", InternetClient+"/24", "dev", "eth0")
	Run(tb, "ip", "-n", f.Internet, "link", "set", "eth0", "up")
	Run(tb, "ip", "-n", f.Internet, "route", "add", "default", "via", internetGW)

	for i, id := range hostIDs {
		h := &Host{ID: id, NS: f.netns(fmt.Sprintf("fh%d%s", i, f.tag)), Underlay: netip.MustParseAddr(fmt.Sprintf("192.168.100.%d", i+1)), Ports: map[string]string{}}
		f.sysctl(h.NS, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
		attach(h.NS, fmt.Sprintf("h%d", i), h.Underlay.String())
		Run(tb, "ip", "-n", h.NS, "addr", "add", gw+"/32", "dev", "lo")
		Run(tb, "ip", "-n", h.NS, "route", "add", "unreachable", cidr)
		Run(tb, "ip", "-n", h.NS, "route", "add", "default", "via", GatewayUnderlay)
		f.Hosts = append(f.Hosts, h)
	}
	return f
}

// Underlays maps every host to its underlay address.
func (f *Fabric) Underlays() map[string]netip.Addr {
	out := map[string]netip.Addr{}
	for _, h := range f.Hosts {
		out[h.ID] = h.Underlay
	}
	return out
}

// AddVM puts a VM on host: a namespace whose eth0 has the ENI's MAC and ip/prefix, on a new
// port of the host, routed by a /32 on its host and via its host on the others.
func (f *Fabric) AddVM(h *Host, name, eni, mac, ip string, prefix int) *VM {
	f.tb.Helper()
	vm := &VM{Name: name, NS: f.netns(fmt.Sprintf("fv%d%s", len(f.vms), f.tag)), Port: fmt.Sprintf("p%d", len(f.vms)), Host: h, IP: ip}
	Run(f.tb, "ip", "-n", h.NS, "link", "add", vm.Port, "type", "veth", "peer", "name", "eth0", "netns", vm.NS)
	Run(f.tb, "ip", "-n", vm.NS, "link", "set", "eth0", "address", mac)
	Run(f.tb, "ip", "-n", vm.NS, "addr", "add", fmt.Sprintf("%s/%d", ip, prefix), "dev", "eth0")
	Run(f.tb, "ip", "-n", vm.NS, "link", "set", "eth0", "up")
	Run(f.tb, "ip", "-n", vm.NS, "route", "add", "default", "via", f.gw)
	f.sysctl(h.NS, "net.ipv4.conf."+vm.Port+".proxy_arp=1")
	Run(f.tb, "ip", "-n", h.NS, "link", "set", vm.Port, "up")
	Run(f.tb, "ip", "-n", h.NS, "route", "add", ip+"/32", "dev", vm.Port)
	Run(f.tb, "ip", "-n", h.NS, "neigh", "replace", ip, "lladdr", mac, "dev", vm.Port, "nud", "permanent")
	for _, o := range f.Hosts {
		if o != h {
			Run(f.tb, "ip", "-n", o.NS, "route", "add", ip+"/32", "via", h.Underlay.String())
		}
	}
	h.Ports[vm.Port] = eni
	f.vms = append(f.vms, vm)
	return vm
}

// Await polls cond until it holds, and fails the test if it does not within the given time:
// for what notifies nothing (keepalived, the kernel's tables, the platform seen from outside).
func Await(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond) // polling
	}
}
