package agent

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/openhavip/havip/platform/retry"
)

// rememberFor is how long the agent remembers an announcement to send again: the broker takes
// no announcement as seen longer ago than 30 s (its bound on seen_age), and keepalived
// announces a new MASTER again well within that.
const rememberFor = 30 * time.Second

// memory is what the agent needs to report again, after a broker failover, the announcements a
// dead leader may never have decided: per VIP, the last gratuitous ARP its ports saw, and when
// it applied each ownership of that VIP (on its own clock, never comparing it with the
// broker's). An announcement is sent again while it is current: seen within rememberFor, not
// yet followed by an ownership of its own ENI (then it was decided), and never once an
// ownership of the VIP by another ENI was applied after it was seen — that owner came later
// (or the agent learned of it later: then it errs on the side of waiting for keepalived's next
// announcement), and sending the old one again would let a former MASTER take the VIP back.
//
// A VIP is keyed by its address alone: two VPCs on one host with the same VIP share one entry,
// and one of them waits for its MASTER's next announcement after a failover.
type memory struct {
	mu   sync.Mutex
	vips map[string]*vipMemory
	// swept is when vips was last rid of what is too old to send again (seen).
	swept time.Time
	// synced is closed while the ownership watch is current (its snapshot applied, the stream
	// not broken since): announcements are judged only against a current view.
	synced chan struct{}
	// kick asks for a round of sending again (a new report stream, a new session, a report
	// the broker could not judge).
	kick chan struct{}
}

// vipMemory is what the agent remembers of one VIP.
type vipMemory struct {
	last *queued // the last announcement seen (its request a copy of the one queued)
	// owners maps each ENI that owned the VIP within rememberFor, since the VIP was first
	// announced here, to when the agent last applied an ownership by it; owner is the latest
	// one applied ("" for none).
	owners  map[string]time.Time
	owner   string
	ownerAt time.Time
}

func newMemory() *memory {
	return &memory{vips: map[string]*vipMemory{}, synced: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// maxRemembered bounds the VIPs remembered: a VM may announce any number of addresses (a
// scan, a hostile tenant), and entries are otherwise dropped only by a round of sending again.
// Past it, those too old to send again are dropped (at most once a second); while that is not
// enough, a new VIP is not remembered: it is still reported, only not sent again after a
// failover.
const maxRemembered = 4096

// seen remembers an announcement the agent is about to report.
func (m *memory) seen(q queued) {
	c := queued{req: proto.CloneOf(q.req), seen: q.seen}
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.vips[q.req.GetSenderIp()]
	if v == nil {
		if len(m.vips) >= maxRemembered && q.seen.Sub(m.swept) >= time.Second {
			m.swept = q.seen
			for ip, old := range m.vips {
				if q.seen.Sub(old.last.seen) > rememberFor {
					delete(m.vips, ip)
				}
			}
		}
		if len(m.vips) >= maxRemembered {
			return
		}
		v = &vipMemory{owners: map[string]time.Time{}}
		m.vips[q.req.GetSenderIp()] = v
	}
	v.last = &c
}

// applied records an ownership of vip by eni ("": none, a lapse) that the agent applied at
// now, if its ports announced vip (only what comes after an announcement can decide or
// supersede it).
func (m *memory) applied(vip, eni string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.vips[vip]
	if v == nil {
		return
	}
	v.owner, v.ownerAt = eni, now
	if v.owner != "" {
		v.owners[v.owner] = now
	}
	for eni, at := range v.owners {
		if now.Sub(at) > rememberFor {
			delete(v.owners, eni)
		}
	}
}

// resend reports whether v's last announcement is to be sent again at now (see memory), and
// whether it is to be forgotten (too old, or superseded).
func (v *vipMemory) resend(now time.Time) (send, forget bool) {
	q := v.last
	if now.Sub(q.seen) > rememberFor {
		return false, true
	}
	eni := q.req.GetNetworkInterfaceId()
	for other, at := range v.owners {
		if other != eni && at.After(q.seen) {
			return false, true
		}
	}
	decided := v.owner == eni && v.ownerAt.After(q.seen)
	return !decided, false
}

// due returns the announcements to send again at now, as of session.
func (m *memory) due(now time.Time, session int64) []queued {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []queued
	for ip, v := range m.vips {
		send, forget := v.resend(now)
		if forget {
			delete(m.vips, ip)
		}
		if send {
			req := proto.CloneOf(v.last.req)
			req.SessionId = session
			out = append(out, queued{req: req, seen: v.last.seen})
		}
	}
	return out
}

// trigger asks for a round of sending again.
func (m *memory) trigger() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// watching records whether the ownership watch is current.
func (m *memory) watching(current bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.synced:
		if !current {
			m.synced = make(chan struct{})
		}
	default:
		if current {
			close(m.synced)
		}
	}
}

// current returns a channel closed while the ownership watch is current.
func (m *memory) current() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.synced
}

// rereport sends the current announcements again each time memory is kicked, once the
// ownership watch is current, with a capped exponential backoff between rounds that follow
// each other (a broker without a leader answers every round with Unavailable, which kicks
// again).
func (a *Agent) rereport(ctx context.Context) {
	n, last := 0, time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.mem.kick:
		}
		select {
		case <-ctx.Done():
			return
		case <-a.mem.current():
		}
		if n++; time.Since(last) > rememberFor {
			n = 1
		}
		if !retry.DefaultBackoff.Wait(ctx, n) {
			return
		}
		last = time.Now()
		a.mu.Lock()
		s := a.session
		a.mu.Unlock()
		for _, q := range a.mem.due(last, s) {
			select {
			case a.reports <- q:
				a.log.Info("reporting an announcement again", "vip", q.req.GetSenderIp(), "eni", q.req.GetNetworkInterfaceId(), "seen_ago", time.Since(q.seen))
			default:
				a.log.Warn("report queue full; not reporting an announcement again", "vip", q.req.GetSenderIp())
			}
		}
	}
}
