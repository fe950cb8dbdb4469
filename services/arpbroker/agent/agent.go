// Package agent is the host agent: it sees the gratuitous ARP of the host's VM ports, reports it
// to the broker, holds the host's session, and follows the ownerships it must apply.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/retry"
	"github.com/openhavip/havip/services/arpbroker/garp"
)

// Config describes one host.
type Config struct {
	AgentID string
	HostID  string
	// Ports maps each VM-facing interface of the host to the ENI behind it.
	Ports map[string]string
	// SessionTTL is the session's TTL; ownerships lapse this long after the agent dies.
	SessionTTL time.Duration
}

// Agent runs the host's ports and session.
type Agent struct {
	cfg    Config
	broker arpbrokerv1.ArpBrokerServiceClient
	log    *slog.Logger

	conns map[string]*packet.Conn // port → its socket, once opened

	mu      sync.Mutex
	session int64
	owners  map[string]*arpbrokerv1.Ownership // HAVIP → the newest ownership seen (fenced by revision)
	applied chan *arpbrokerv1.Ownership
	reports chan queued
	mem     *memory // what to report again after a broker failover
}

// queued is a report waiting to be sent, with when its packet was seen.
type queued struct {
	req  *arpbrokerv1.ReportArpAnnouncementRequest
	seen time.Time
}

// New returns an agent that reports to broker.
func New(cfg Config, broker arpbrokerv1.ArpBrokerServiceClient, log *slog.Logger) *Agent {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 10 * time.Second
	}
	return &Agent{cfg: cfg, broker: broker, log: log, owners: map[string]*arpbrokerv1.Ownership{},
		applied: make(chan *arpbrokerv1.Ownership, 1024), reports: make(chan queued, 1024), mem: newMemory()}
}

// Applied delivers every ownership the agent applies, in order (for tests and tools); it
// drops what nobody reads.
func (a *Agent) Applied() <-chan *arpbrokerv1.Ownership { return a.applied }

// Open opens the AF_PACKET sockets of the ports, in the calling thread's network namespace.
// Run opens them itself if Open was not called.
func (a *Agent) Open() error {
	a.conns = make(map[string]*packet.Conn, len(a.cfg.Ports))
	for ifname := range a.cfg.Ports {
		c, err := Listen(ifname)
		if err != nil {
			a.closePorts()
			return err
		}
		a.conns[ifname] = c
	}
	return nil
}

// OpenIn is Open inside the network namespace at path (a file as `ip netns add` makes under
// /var/run/netns): for an agent whose VM ports live in another namespace than its calls to the
// broker, as on a simulated host. The sockets are opened on an OS thread that enters the
// namespace and is then dropped, never reused in it; the agent's other sockets stay in the
// process's namespace.
func (a *Agent) OpenIn(path string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		f, err := os.Open(path)
		if err != nil {
			errc <- fmt.Errorf("network namespace: %w", err)
			return
		}
		defer func() { _ = f.Close() }()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		errc <- a.Open()
	}()
	return <-errc
}

func (a *Agent) closePorts() {
	for _, c := range a.conns {
		_ = c.Close()
	}
}

// Run opens the session, and reports, renews and follows until ctx ends; then it closes the ports.
func (a *Agent) Run(ctx context.Context) error {
	if a.conns == nil {
		if err := a.Open(); err != nil {
			return err
		}
	}
	defer a.closePorts()
	conns := a.conns
	if err := a.openSession(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for ifname, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); a.readPort(ctx, ifname, c) }()
	}
	wg.Add(4)
	go func() { defer wg.Done(); a.report(ctx) }()
	go func() { defer wg.Done(); a.rereport(ctx) }()
	go func() { defer wg.Done(); a.keepAlive(ctx) }()
	go func() { defer wg.Done(); a.follow(ctx) }()
	<-ctx.Done()
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now()) // unblock the readers
	}
	wg.Wait()
	return nil
}

// arpOnly is a socket filter that keeps ARP frames, untagged or behind one VLAN tag.
var arpOnly = func() []bpf.RawInstruction {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0806, SkipTrue: 3},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x8100, SkipFalse: 3},
		bpf.LoadAbsolute{Off: 16, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0806, SkipFalse: 1},
		bpf.RetConstant{Val: 1600},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic(err)
	}
	return prog
}()

// Listen opens an AF_PACKET socket for the ARP frames the VM behind ifname sends (not those the
// host sends to it). It listens to every protocol, filtered to ARP in the kernel: a socket bound
// to ETH_P_ARP sees nothing on a bridge port, whose frames the bridge takes first.
func Listen(ifname string) (*packet.Conn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("port %s: %w", ifname, err)
	}
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: arpOnly})
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET on %s: %w", ifname, err)
	}
	rc, err := c.SyscallConn()
	if err == nil {
		var serr error
		err = rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
		})
		if err == nil {
			err = serr
		}
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("ignore outgoing frames on %s: %w", ifname, err)
	}
	return c, nil
}

func (a *Agent) openSession(ctx context.Context) error {
	resp, err := a.broker.OpenSession(ctx, &arpbrokerv1.OpenSessionRequest{AgentId: a.cfg.AgentID, HostId: a.cfg.HostID, TtlSeconds: uint32(a.cfg.SessionTTL / time.Second)})
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	a.mu.Lock()
	a.session = resp.GetSessionId()
	a.mu.Unlock()
	a.mem.trigger() // a new session: what the old one reported may be lost
	a.log.Info("session open", "session", resp.GetSessionId(), "ttl", resp.GetTtlSeconds())
	return nil
}

// keepAlive renews the session every third of its TTL, and opens a new one if it was lost.
func (a *Agent) keepAlive(ctx context.Context) {
	retry.Every(ctx, a.cfg.SessionTTL/3, func() {
		a.mu.Lock()
		s := a.session
		a.mu.Unlock()
		_, err := a.broker.KeepAliveSession(ctx, &arpbrokerv1.KeepAliveSessionRequest{SessionId: s, AgentId: a.cfg.AgentID})
		if apierr.Reason(err) == apierr.ReasonResourceNotFound {
			if err := a.openSession(ctx); err != nil {
				a.log.Warn("reopen session", "err", err)
			}
		} else if err != nil && ctx.Err() == nil {
			a.log.Warn("keepalive", "err", err)
		}
	})
}

// readPort queues every gratuitous ARP the VM on ifname sends for the reporter, so that reading
// never waits on the broker: keepalived's first burst is five frames at once.
func (a *Agent) readPort(ctx context.Context, ifname string, c *packet.Conn) {
	eni := a.cfg.Ports[ifname]
	buf := make([]byte, 1600)
	for fails := 0; ctx.Err() == nil; {
		n, _, err := c.ReadFrom(buf)
		seen := time.Now()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			a.log.Warn("read", "port", ifname, "err", err)
			fails++
			retry.DefaultBackoff.Wait(ctx, fails) // a port in trouble must not spin
			continue
		}
		fails = 0
		p, err := garp.Parse(buf[:n])
		if err != nil || !p.Gratuitous() {
			continue
		}
		a.mu.Lock()
		s := a.session
		a.mu.Unlock()
		req := &arpbrokerv1.ReportArpAnnouncementRequest{
			AgentId: a.cfg.AgentID, SessionId: s, NetworkInterfaceId: eni,
			EthernetSourceMac: p.EthernetSource.String(), SenderMac: p.SenderMAC.String(),
			SenderIp: p.SenderIP.String(), TargetIp: p.TargetIP.String(), Operation: arpbrokerv1.ArpOperation(p.Operation),
		}
		a.mem.seen(queued{req: req, seen: seen})
		select {
		case a.reports <- queued{req: req, seen: seen}:
		default:
			a.log.Warn("report queue full; dropping an announcement", "port", ifname)
		}
	}
}

// report sends the queued reports on one stream to the broker, reopening it when it breaks,
// or when the broker answers a report Unavailable: that replica cannot decide now (it has no
// leader to forward to, or it is cut off from etcd), and a new stream goes to the next replica.
func (a *Agent) report(ctx context.Context) {
	for fails := 0; ctx.Err() == nil; {
		sctx, cancel := context.WithCancel(ctx)
		stream, err := a.broker.StreamArpAnnouncements(sctx)
		if err != nil {
			cancel()
			fails++
			retry.DefaultBackoff.Wait(ctx, fails) // the broker is away: try again
			continue
		}
		fails = 0
		a.mem.trigger() // a new stream: what the last one carried may never have been decided
		broken := make(chan struct{})
		go func() {
			defer close(broken)
			for {
				resp, err := stream.Recv()
				if err != nil {
					return
				}
				if r := resp.GetResult(); r != nil {
					a.log.Debug("reported", "havip", r.GetHavipId(), "result", r.GetResult().String(), "reason", r.GetReason())
				} else {
					a.log.Warn("report failed", "code", resp.GetErrorCode(), "err", resp.GetErrorMessage())
					if codes.Code(resp.GetErrorCode()) == codes.Unavailable { // report again, to another replica
						a.mem.trigger()
						return
					}
				}
			}
		}()
	send:
		for {
			select {
			case <-ctx.Done():
				_ = stream.CloseSend()
				cancel()
				return
			case <-broken:
				break send
			case q := <-a.reports:
				// How long ago the packet was seen, on this host's clock: the broker measures
				// owner changes from it without comparing clocks.
				q.req.SeenAge = durationpb.New(time.Since(q.seen))
				if err := stream.Send(&arpbrokerv1.StreamArpAnnouncementsRequest{Report: q.req}); err != nil {
					// Try it again on the next stream. This goroutine alone reads the queue, so it
					// must not wait for room: when the ports filled it meanwhile, the new stream's
					// re-report (memory) sends the VIP's last announcement again.
					select {
					case a.reports <- q:
					default:
						a.log.Warn("report queue full; dropping an announcement the stream could not send", "vip", q.req.GetSenderIp())
					}
					break send
				}
			}
		}
		cancel() // the broken stream's end, on both sides
	}
}

// follow applies the broker's ownerships, ignoring anything older than what it has.
func (a *Agent) follow(ctx context.Context) {
	for fails := 0; ctx.Err() == nil; {
		stream, err := a.broker.WatchOwnership(ctx, &arpbrokerv1.WatchOwnershipRequest{})
		for err == nil {
			var m *arpbrokerv1.WatchOwnershipResponse
			if m, err = stream.Recv(); err != nil {
				break
			}
			fails = 0
			for _, o := range m.GetOwnerships() {
				a.apply(o)
			}
			if m.GetSnapshot() {
				a.mem.watching(true)
			}
		}
		a.mem.watching(false)
		fails++
		retry.DefaultBackoff.Wait(ctx, fails) // the broker is away: try again
	}
}

func (a *Agent) apply(o *arpbrokerv1.Ownership) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.owners[o.GetHavipId()]
	if cur != nil && cur.GetRevision() >= o.GetRevision() {
		return // stale: fencing
	}
	a.owners[o.GetHavipId()] = o
	vip := o.GetVip()
	if vip == "" && cur != nil {
		vip = cur.GetVip() // a lapse names no VIP: it is the VIP of the ownership it ends
	}
	a.mem.applied(vip, o.GetNetworkInterfaceId(), time.Now())
	select {
	case a.applied <- o:
	default:
	}
}
