package agent

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
)

// announce is a gratuitous ARP for vip from eni, under session 1, seen at seen.
func announce(vip, eni string, seen time.Time) queued {
	return queued{req: &arpbrokerv1.ReportArpAnnouncementRequest{AgentId: "a", SessionId: 1, NetworkInterfaceId: eni, SenderIp: vip, TargetIp: vip}, seen: seen}
}

// TestRememberedAnnouncements: which remembered announcement is reported again, and as what.
func TestRememberedAnnouncements(t *testing.T) {
	const vip = "10.0.0.9"
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, c := range []struct {
		name   string
		events func(m *memory) // in order
		now    time.Duration
		want   string // the ENI reported again, "" none
	}{
		{"undecided: sent again", func(m *memory) { m.seen(announce(vip, "eni-a", t0)) }, time.Second, "eni-a"},
		{"too old: not", func(m *memory) { m.seen(announce(vip, "eni-a", t0)) }, rememberFor + time.Second, ""},
		{"another owner after it: superseded", func(m *memory) {
			m.seen(announce(vip, "eni-a", t0))
			m.applied(vip, "eni-b", at(500*time.Millisecond))
		}, time.Second, ""},
		{"another owner after it, then none: still superseded", func(m *memory) {
			m.seen(announce(vip, "eni-a", t0))
			m.applied(vip, "eni-b", at(500*time.Millisecond))
			m.applied(vip, "", at(700*time.Millisecond))
		}, time.Second, ""},
		{"another owner before it: sent again (a takeover)", func(m *memory) {
			m.applied(vip, "eni-b", at(-time.Second))
			m.seen(announce(vip, "eni-a", t0))
		}, time.Second, "eni-a"},
		{"its own ENI owns it since: decided", func(m *memory) {
			m.seen(announce(vip, "eni-a", t0))
			m.applied(vip, "eni-a", at(100*time.Millisecond))
		}, time.Second, ""},
		{"decided, then the ownership lapsed (session lost): sent again", func(m *memory) {
			m.seen(announce(vip, "eni-a", t0))
			m.applied(vip, "eni-a", at(100*time.Millisecond))
			m.applied(vip, "", at(200*time.Millisecond))
		}, time.Second, "eni-a"},
		{"another VIP's owner changes nothing", func(m *memory) {
			m.seen(announce(vip, "eni-a", t0))
			m.applied("10.0.0.10", "eni-b", at(100*time.Millisecond))
		}, time.Second, "eni-a"},
		{"a newer announcement of another ENI replaces it", func(m *memory) {
			m.seen(announce(vip, "eni-a", t0))
			m.seen(announce(vip, "eni-b", at(100*time.Millisecond)))
		}, time.Second, "eni-b"},
	} {
		m := newMemory()
		c.events(m)
		due := m.due(at(c.now), 7)
		got := ""
		if len(due) > 1 {
			t.Errorf("%s: %d announcements due", c.name, len(due))
		}
		if len(due) == 1 {
			got = due[0].req.GetNetworkInterfaceId()
			if s := due[0].req.GetSessionId(); s != 7 {
				t.Errorf("%s: sent again under session %d, want the current one (7)", c.name, s)
			}
			if !due[0].seen.Equal(t0) && !due[0].seen.Equal(at(100*time.Millisecond)) {
				t.Errorf("%s: seen at %v, not when it was seen", c.name, due[0].seen)
			}
		}
		if got != c.want {
			t.Errorf("%s: sent again %q, want %q", c.name, got, c.want)
		}
	}
}

// TestRememberedIsACopy: what is sent again is a copy, under the current session, and its
// seen time (the reporter sets seen_age from it when it sends).
func TestRememberedIsACopy(t *testing.T) {
	m := newMemory()
	q := announce("10.0.0.9", "eni-a", time.Now())
	m.seen(q)
	q.req.SessionId = 99 // the queued request, changed by the reporter
	due := m.due(time.Now(), 3)
	if len(due) != 1 || due[0].req == q.req || due[0].req.GetSessionId() != 3 || !due[0].seen.Equal(q.seen) {
		t.Fatalf("due %v", due)
	}
	due[0].req.SessionId = 5
	if again := m.due(time.Now(), 4); again[0].req.GetSessionId() != 4 {
		t.Fatalf("a sent copy changed the memory: %v", again)
	}
}

// TestWatching: the channel of a current watch is closed while it is current, and open again
// once the watch broke.
func TestWatching(t *testing.T) {
	m := newMemory()
	closed := func() bool {
		select {
		case <-m.current():
			return true
		default:
			return false
		}
	}
	if closed() {
		t.Fatal("current before any snapshot")
	}
	m.watching(true)
	m.watching(true)
	if !closed() {
		t.Fatal("not current after a snapshot")
	}
	m.watching(false)
	m.watching(false)
	if closed() {
		t.Fatal("current after the watch broke")
	}
}

// TestRememberedBounded: a VM announcing ever new addresses fills the memory up to
// maxRemembered and no further; once the old entries are too old to send again, they make room.
func TestRememberedBounded(t *testing.T) {
	m := newMemory()
	t0 := time.Now()
	for i := range maxRemembered + 100 {
		m.seen(announce(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), "eni-a", t0))
	}
	if n := len(m.vips); n != maxRemembered {
		t.Fatalf("%d VIPs remembered, want the bound %d", n, maxRemembered)
	}
	later := t0.Add(rememberFor + time.Second)
	m.seen(announce("10.255.0.1", "eni-a", later))
	if n := len(m.vips); n != 1 {
		t.Fatalf("%d VIPs remembered after the old ones lapsed, want only the new one", n)
	}
	if due := m.due(later, 1); len(due) != 1 || due[0].req.GetSenderIp() != "10.255.0.1" {
		t.Fatalf("due %v", due)
	}
}

// TestLapseNamesNoVIP: the broker's lapse of an ownership (its session ended) names no VIP; the
// agent takes it as the end of the VIP it had, so the announcement its ENI won before is sent
// again (on the new session) rather than taken as still decided.
func TestLapseNamesNoVIP(t *testing.T) {
	const vip = "10.0.0.9"
	a := New(Config{AgentID: "a", HostID: "h"}, nil, slog.New(slog.DiscardHandler))
	a.mem.seen(announce(vip, "eni-a", time.Now().Add(-time.Second)))
	a.apply(&arpbrokerv1.Ownership{HavipId: "havip-1", Vip: vip, NetworkInterfaceId: "eni-a", Revision: 10})
	if due := a.mem.due(time.Now(), 1); len(due) != 0 {
		t.Fatalf("sent again while decided: %v", due)
	}
	a.apply(&arpbrokerv1.Ownership{HavipId: "havip-1", Revision: 11}) // as ownershipPB makes a lapse
	if due := a.mem.due(time.Now(), 2); len(due) != 1 || due[0].req.GetNetworkInterfaceId() != "eni-a" {
		t.Fatalf("after the lapse, due %v, want eni-a's announcement", due)
	}
}
