// Package chaos runs the control plane as processes in network namespaces on a 3-member etcd
// cluster, injects faults (kill -9, SIGSTOP, partitions, slow peers, a slow disk) under a mixed
// load, and checks the load's history with porcupine and the records with the invariants.
package chaos

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/openhavip/havip/integration/fabric"
)

// Lab is a set of network namespaces, one per process, on one bridge inside a namespace of
// its own (Docker's firewall drops what is bridged in the root namespace), reached from the
// root namespace (where the test runs) through a veth: every process has an address of its
// own, so each may use fixed ports, and each can be cut off or slowed alone.
type Lab struct {
	t      testing.TB
	id     string       // 4 hex digits, unique per lab: every name starts with it
	prefix netip.Prefix // the lab's /24
	Root   netip.Addr   // the root namespace's address in it

	mu    sync.Mutex
	nodes []*Node
}

// Node is one network namespace of the lab, with its address.
type Node struct {
	Name string // the node's name in the lab
	NS   string // the namespace's name (ip netns)
	IP   netip.Addr
}

// NewLab builds the switch namespace and the root namespace's link to it. It is removed when
// the test ends.
func NewLab(t testing.TB) *Lab {
	t.Helper()
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	l := &Lab{t: t, id: hex.EncodeToString(b)}
	// 10.252.0.0/16 is carved into /24s by the lab's ID: two labs at once (two test binaries)
	// collide only if their IDs' low bytes do, and then the second fails to add its route.
	l.prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 252, b[1], 0}), 24)
	l.Root = l.prefix.Addr().Next()
	sw := l.ns("sw")
	t.Cleanup(l.remove)
	fabric.Run(t, "ip", "netns", "add", sw)
	fabric.Run(t, "ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	fabric.Run(t, "ip", "-n", sw, "link", "set", "br0", "up")
	fabric.Run(t, "ip", "-n", sw, "link", "set", "lo", "up")
	root := "hc" + l.id + "r"
	fabric.Run(t, "ip", "link", "add", root, "type", "veth", "peer", "name", "up0", "netns", sw)
	fabric.Run(t, "ip", "-n", sw, "link", "set", "up0", "master", "br0", "up")
	fabric.Run(t, "ip", "addr", "add", netip.PrefixFrom(l.Root, 24).String(), "dev", root)
	fabric.Run(t, "ip", "link", "set", root, "up")
	return l
}

func (l *Lab) ns(name string) string { return "hc" + l.id + "-" + name }

// Node adds a namespace named name, linked to the switch, with the next address of the lab.
func (l *Lab) Node(name string) *Node {
	l.t.Helper()
	l.mu.Lock()
	n := &Node{Name: name, NS: l.ns(name), IP: l.Root}
	for range len(l.nodes) + 9 { // .10, .11, ...
		n.IP = n.IP.Next()
	}
	l.nodes = append(l.nodes, n)
	idx := len(l.nodes)
	l.mu.Unlock()
	sw, port := l.ns("sw"), fmt.Sprintf("p%d", idx)
	fabric.Run(l.t, "ip", "netns", "add", n.NS)
	fabric.Run(l.t, "ip", "-n", n.NS, "link", "set", "lo", "up")
	fabric.Run(l.t, "ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.NS)
	fabric.Run(l.t, "ip", "-n", sw, "link", "set", port, "master", "br0", "up")
	fabric.Run(l.t, "ip", "-n", n.NS, "addr", "add", netip.PrefixFrom(n.IP, 24).String(), "dev", "eth0")
	fabric.Run(l.t, "ip", "-n", n.NS, "link", "set", "eth0", "up")
	return n
}

// Partition drops every packet between n and the addresses to (both ways), with nftables in
// n's namespace, until Heal.
func (l *Lab) Partition(n *Node, to ...netip.Addr) {
	l.t.Helper()
	var set []string
	for _, a := range to {
		set = append(set, a.String())
	}
	rules := fmt.Sprintf(`table inet chaos {
	chain out { type filter hook output priority 0; ip daddr { %[1]s } drop; }
	chain in { type filter hook input priority 0; ip saddr { %[1]s } drop; }
}`, strings.Join(set, ", "))
	cmd := exec.Command("ip", "netns", "exec", n.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("partition %s: %v\n%s", n.Name, err, out)
	}
}

// Heal removes n's partition.
func (l *Lab) Heal(n *Node) {
	l.t.Helper()
	fabric.Run(l.t, "ip", "netns", "exec", n.NS, "nft", "delete", "table", "inet", "chaos")
}

// remove deletes every namespace of the lab (their veths go with them) and the root's veth.
func (l *Lab) remove() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.nodes {
		_ = exec.Command("ip", "netns", "del", n.NS).Run()
	}
	_ = exec.Command("ip", "link", "del", "hc"+l.id+"r").Run()
	_ = exec.Command("ip", "netns", "del", l.ns("sw")).Run()
}
