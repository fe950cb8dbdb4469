package dataplane_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openhavip/havip/integration/fabric"
	"github.com/openhavip/havip/services/arpbroker/agent"
	garpframe "github.com/openhavip/havip/services/arpbroker/garp"
)

// probePort is the UDP port the VMs answer probes on.
const probePort = 7000

// probeInterval is the probes' pace: 200 per second.
const probeInterval = 5 * time.Millisecond

// responder is a VM answering probes sent to the VIP with its name; it records the probes it
// received.
type responder struct {
	name string
	mu   sync.Mutex
	got  []probe
}

// probe is a probe a VM received: its sender's address and sequence number.
type probe struct {
	from string
	seq  int
}

// startResponder listens on vip:probePort in the VM's namespace (IP_FREEBIND: the VIP is there
// only while the VM is MASTER) and answers "<name> <seq>" from the VIP.
func startResponder(t *testing.T, vm *fabric.VM, vip string) *responder {
	t.Helper()
	r := &responder{name: vm.Name}
	var conn net.PacketConn
	fabric.In(t, vm.NS, func() (err error) {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1) })
			return errors.Join(err, serr)
		}}
		conn, err = lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("%s:%d", vip, probePort))
		return err
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed at cleanup
			}
			seq, err := strconv.Atoi(string(buf[:n]))
			if err != nil {
				continue
			}
			src, _ := netip.ParseAddrPort(from.String())
			r.mu.Lock()
			r.got = append(r.got, probe{from: src.Addr().String(), seq: seq})
			r.mu.Unlock()
			_, _ = conn.WriteTo([]byte(fmt.Sprintf("%s %d", vm.Name, seq)), from)
		}
	}()
	t.Cleanup(func() { _ = conn.Close(); <-done })
	return r
}

// received is the probes the VM received.
func (r *responder) received() []probe {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]probe(nil), r.got...)
}

// prober sends a sequence-numbered UDP probe every probeInterval from a namespace to dst, and
// records who answered each and from which address.
type prober struct {
	dst netip.AddrPort

	mu        sync.Mutex
	sent      []time.Time    // by sequence number
	by        map[int]string // sequence number → the VM that answered
	badSource []string       // answers from another address than dst
}

func startProber(t *testing.T, ns, dst string) *prober {
	t.Helper()
	p := &prober{dst: netip.AddrPortFrom(netip.MustParseAddr(dst), probePort), by: map[int]string{}}
	var conn *net.UDPConn
	fabric.In(t, ns, func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{})
		return err
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(probeInterval)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			p.mu.Lock()
			p.sent = append(p.sent, time.Now())
			p.mu.Unlock()
			_, _ = conn.WriteToUDPAddrPort([]byte(strconv.Itoa(seq)), p.dst)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed at cleanup
			}
			name, seqText, ok := strings.Cut(string(buf[:n]), " ")
			seq, err := strconv.Atoi(seqText)
			if !ok || err != nil {
				continue
			}
			p.mu.Lock()
			if from.Addr().Unmap() != p.dst.Addr() || from.Port() != probePort {
				p.badSource = append(p.badSource, from.String())
			}
			p.by[seq] = name
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { close(stop); _ = conn.Close(); wg.Wait() })
	return p
}

// next is the sequence number of the next probe.
func (p *prober) next() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sent)
}

// sentAt is when probe seq was sent.
func (p *prober) sentAt(seq int) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[seq]
}

// seqAfter is the first probe sent at or after t (the next one if none was yet).
func (p *prober) seqAfter(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.sent) - 1; i >= 0; i-- {
		if p.sent[i].Before(t) {
			return i + 1
		}
	}
	return 0
}

// answers counts, per VM, the answers to probes from..to-1.
func (p *prober) answers(from, to int) map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for seq := from; seq < to; seq++ {
		if name, ok := p.by[seq]; ok {
			out[name]++
		}
	}
	return out
}

// last is the last probe before seq answered by name; first the first at or after seq; -1: none.
func (p *prober) last(name string, before int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for seq := before - 1; seq >= 0; seq-- {
		if p.by[seq] == name {
			return seq
		}
	}
	return -1
}

func (p *prober) first(name string, from int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for seq := from; seq < len(p.sent); seq++ {
		if p.by[seq] == name {
			return seq
		}
	}
	return -1
}

// awaitProbes waits until n more probes were sent, and the answers to them had time to come back.
func (p *prober) awaitProbes(t *testing.T, n int) int {
	t.Helper()
	want := p.next() + n
	deadline := time.Now().Add(time.Duration(n)*probeInterval*3 + 5*time.Second)
	for p.next() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the prober of %s fell behind", p.dst)
		}
		time.Sleep(probeInterval) // the prober's own pace
	}
	time.Sleep(50 * time.Millisecond) // the answers to the last probes: far longer than a round trip here
	return want
}

// garps records when the VM behind a host port announced vip.
type garps struct {
	mu    sync.Mutex
	times []time.Time
}

func watchGARPs(t *testing.T, vm *fabric.VM, vip string) *garps {
	t.Helper()
	g := &garps{}
	var conn interface {
		ReadFrom([]byte) (int, net.Addr, error)
		Close() error
	}
	fabric.In(t, vm.Host.NS, func() error {
		c, err := agent.Listen(vm.Port)
		conn = c
		return err
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1600)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed at cleanup
			}
			if f, err := garpframe.Parse(buf[:n]); err == nil && f.Gratuitous() && f.SenderIP.String() == vip {
				g.mu.Lock()
				g.times = append(g.times, time.Now())
				g.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { _ = conn.Close(); <-done })
	return g
}

// firstAfter is the first announcement after t, if any.
func (g *garps) firstAfter(t time.Time) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, at := range g.times {
		if at.After(t) {
			return at, true
		}
	}
	return time.Time{}, false
}
