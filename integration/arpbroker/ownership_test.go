package arpbroker_test

import (
	"context"
	"testing"
	"time"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/services/arpbroker"
)

// awaitState polls havipd until the HAVIP's owner ENI is want ("" for UNBIND).
func awaitState(t *testing.T, c clients, w world, id, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		hv := state(t, c, w.ctx, id)
		if hv.GetNetworkInterfaceId() == want && (want == "") == (hv.GetState() == "UNBIND") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v, want owner %q", within, hv, want)
		}
		time.Sleep(50 * time.Millisecond) // polling for a lease or a timer
	}
}

// TestOwnershipFollowsSession: an ownership lasts while its agent renews its session, lapses
// when it stops (the HAVIP is UNBIND again), and WatchOwnership reports both, with rising
// fencing revisions.
func TestOwnershipFollowsSession(t *testing.T) {
	c := suite(t, arpbroker.Config{})
	w := build(t, c)
	awaitLeader(t, c, session(t, c, 30)) // first: a replica of an earlier run may hold the election a while
	sess := session(t, c, 2)
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := c.broker.WatchOwnership(wctx, &arpbrokerv1.WatchOwnershipRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if snap, err := watch.Recv(); err != nil || !snap.GetSnapshot() {
		t.Fatalf("first message: %v %v", snap, err)
	}
	id := w.eniRange.GetHavipId()
	claim := etcdtest.Must[*arpbrokerv1.ReportArpAnnouncementResponse](t)(c.broker.ReportArpAnnouncement(w.ctx, garp(sess, w.s1, w.eniRange.GetVip())))
	if claim.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED {
		t.Fatal(claim)
	}
	// Renew for longer than the TTL: the ownership holds.
	for range 6 {
		time.Sleep(500 * time.Millisecond) // an agent's keepalive period
		if err := sess.keepAlive(); err != nil {
			t.Fatal(err)
		}
	}
	if hv := state(t, c, w.ctx, id); hv.GetNetworkInterfaceId() != w.s1.id {
		t.Fatalf("ownership lost while the session was renewed: %v", hv)
	}
	// The agent dies: the ownership lapses with the session.
	awaitState(t, c, w, id, "", 10*time.Second)

	var revs []int64
	var owners, vpcs []string
	for len(revs) < 2 {
		m, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range m.GetOwnerships() {
			if o.GetHavipId() == id {
				revs, owners, vpcs = append(revs, o.GetRevision()), append(owners, o.GetNetworkInterfaceId()), append(vpcs, o.GetVpcId())
			}
		}
	}
	if owners[0] != w.s1.id || owners[1] != "" || revs[0] != claim.GetRevision() || revs[1] <= revs[0] {
		t.Errorf("watched %v at revisions %v; want %s then none, rising from %d", owners, revs, w.s1.id, claim.GetRevision())
	}
	if vpcs[0] != w.eniRange.GetVpcId() || vpcs[1] != "" { // a data plane of one VPC applies only its own
		t.Errorf("watched VPCs %q; want the HAVIP's %s, then none in the lapse", vpcs, w.eniRange.GetVpcId())
	}
	if err := sess.keepAlive(); err == nil {
		t.Error("an expired session was renewed")
	}
}

// TestFlapDamping: two announcers alternating (a keepalived split brain) change the owner at
// most once per hold-down window (3s); when they stop, the last one wins.
func TestFlapDamping(t *testing.T) {
	c := suite(t, arpbroker.Config{})
	w := build(t, c)
	sess := session(t, c, 30)
	awaitLeader(t, c, sess)
	id, vip := w.eniRange.GetHavipId(), w.eniRange.GetVip()
	claim := func(n nic) arpbrokerv1.ClaimResult {
		return etcdtest.Must[*arpbrokerv1.ReportArpAnnouncementResponse](t)(c.broker.ReportArpAnnouncement(w.ctx, garp(sess, n, vip))).GetResult()
	}
	if r := claim(w.s1); r != arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED {
		t.Fatal(r)
	}
	start := time.Now()
	changes := 0
	last := w.s1.id
	var lastAnnouncer nic
	for i := range 12 { // 12 announcements, 250ms apart: 3s of flapping
		lastAnnouncer = []nic{w.s2, w.s1}[i%2]
		claim(lastAnnouncer)
		if o := state(t, c, w.ctx, id).GetNetworkInterfaceId(); o != last {
			changes++
			last = o
		}
		time.Sleep(250 * time.Millisecond) // the pace of the flapping
	}
	windows := int(time.Since(start)/(3*time.Second)) + 1
	if changes > windows {
		t.Errorf("%d owner changes in %v: more than one per 3s hold-down", changes, time.Since(start))
	}
	// The flapping stops with s1 having spoken last (i=11); s2 speaks once more and then
	// nothing: s2 must win when its hold-down ends. It may own the HAVIP already (its claim at
	// i=10 taken when a hold-down ended, s1's at i=11 deferred): its claim then refreshes.
	lastAnnouncer = w.s2
	switch r := claim(lastAnnouncer); r {
	case arpbrokerv1.ClaimResult_CLAIM_RESULT_DEFERRED, arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED, arpbrokerv1.ClaimResult_CLAIM_RESULT_REFRESHED:
	default:
		t.Fatalf("last announcer: %v", r)
	}
	awaitState(t, c, w, id, lastAnnouncer.id, 3*time.Second+time.Second)
}
