package arpbroker_test

import (
	"testing"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/arpbroker/broker"
)

// TestClaimRules: every rule of a claim, each rejection with its reason and ownership unchanged;
// an accepted claim makes havipd show BIND; a refresh writes nothing.
func TestClaimRules(t *testing.T) {
	c := suite(t, arpbroker.Config{})
	w := build(t, c)
	sess := session(t, c, 30)
	awaitLeader(t, c, sess)
	eniVIP, cvmVIP := w.eniRange.GetVip(), w.cvmRange.GetVip()

	// s1 owns the ENI-range HAVIP to begin with.
	first := etcdtest.Must[*arpbrokerv1.ReportArpAnnouncementResponse](t)(c.broker.ReportArpAnnouncement(w.ctx, garp(sess, w.s1, eniVIP)))
	if first.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED || first.GetRevision() == 0 {
		t.Fatalf("first claim: %v", first)
	}
	hv := state(t, c, w.ctx, w.eniRange.GetHavipId())
	if hv.GetState() != "BIND" || hv.GetNetworkInterfaceId() != w.s1.id || hv.GetInstanceId() != w.p1.instance || hv.GetHostId() != "host-1" || hv.GetOwnerRevision() != first.GetRevision() {
		t.Fatalf("havipd after the claim: %v", hv)
	}

	spoof := garp(sess, w.s2, eniVIP)
	spoof.SenderMac, spoof.EthernetSourceMac = w.s1.mac, w.s1.mac
	ethMismatch := garp(sess, w.s2, eniVIP)
	ethMismatch.EthernetSourceMac = w.s1.mac
	zero := garp(sess, w.s2, "0.0.0.0")
	notGratuitous := garp(sess, w.s2, eniVIP)
	notGratuitous.TargetIp = w.p1.ip
	badOp := garp(sess, w.s2, eniVIP)
	badOp.Operation = 3
	cases := []struct {
		name   string
		req    *arpbrokerv1.ReportArpAnnouncementRequest
		havip  string
		reason string
	}{
		{"spoofed MAC", spoof, w.eniRange.GetHavipId(), broker.ReasonSpoofedMAC},
		{"Ethernet source differs from sender", ethMismatch, "", broker.ReasonMACMismatch},
		{"sender IP 0", zero, "", broker.ReasonSenderIPZero},
		{"sender differs from target", notGratuitous, "", broker.ReasonNotGratuitous},
		{"opcode neither request nor reply", badOp, "", broker.ReasonBadOperation},
		{"unknown VIP", garp(sess, w.s2, "10.0.0.250"), "", broker.ReasonUnknownVIP},
		{"ENI of another subnet", garp(sess, w.p3, w.open.GetVip()), w.open.GetHavipId(), broker.ReasonSubnetMismatch},
		{"ENI outside the range", garp(sess, w.p4, eniVIP), w.eniRange.GetHavipId(), broker.ReasonOutsideRange},
		{"ENI range refuses the primary ENI", garp(sess, w.p1, eniVIP), w.eniRange.GetHavipId(), broker.ReasonOutsideRange},
		{"CVM outside the CVM range", garp(sess, w.p4, cvmVIP), w.cvmRange.GetHavipId(), broker.ReasonOutsideRange},
		{"deleted HAVIP", garp(sess, w.s1, w.deleted.GetVip()), "", broker.ReasonUnknownVIP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := state(t, c, w.ctx, w.eniRange.GetHavipId())
			r := etcdtest.Must[*arpbrokerv1.ReportArpAnnouncementResponse](t)(c.broker.ReportArpAnnouncement(w.ctx, tc.req))
			if r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_REJECTED || r.GetReason() != tc.reason {
				t.Fatalf("got %v, want rejected for %s", r, tc.reason)
			}
			if after := state(t, c, w.ctx, w.eniRange.GetHavipId()); after.GetNetworkInterfaceId() != before.GetNetworkInterfaceId() || after.GetOwnerRevision() != before.GetOwnerRevision() {
				t.Errorf("ownership moved: %v → %v", before, after)
			}
			if tc.havip != "" {
				rs := etcdtest.Must[*arpbrokerv1.ListArpRejectionsResponse](t)(c.broker.ListArpRejections(w.ctx, &arpbrokerv1.ListArpRejectionsRequest{HavipId: tc.havip}))
				if len(rs.GetRejectionSet()) == 0 || rs.GetRejectionSet()[0].GetReason() != tc.reason {
					t.Errorf("rejection not listed: %v", rs)
				}
				// The tenant sees it on its HAVIP (without the agent's identity); no other account does.
				mine := etcdtest.Must[*havipv1.DescribeHaVipArpRejectionsResponse](t)(c.havip.DescribeHaVipArpRejections(w.ctx, &havipv1.DescribeHaVipArpRejectionsRequest{HavipId: tc.havip}))
				if len(mine.GetRejectionSet()) == 0 || mine.GetRejectionSet()[0].GetReason() != tc.reason || mine.GetRejectionSet()[0].GetNetworkInterfaceId() != tc.req.GetNetworkInterfaceId() {
					t.Errorf("the tenant's rejections: %v", mine)
				}
				if _, err := c.havip.DescribeHaVipArpRejections(as("acct-other"+ids.New("")), &havipv1.DescribeHaVipArpRejectionsRequest{HavipId: tc.havip}); apierr.Reason(err) != apierr.ReasonResourceNotFound {
					t.Errorf("another account's call: %v, want %s", err, apierr.ReasonResourceNotFound)
				}
			}
		})
	}

	// A CVM range covers every ENI of the CVM, the primary one included.
	if r := etcdtest.Must[*arpbrokerv1.ReportArpAnnouncementResponse](t)(c.broker.ReportArpAnnouncement(w.ctx, garp(sess, w.p1, cvmVIP))); r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED {
		t.Errorf("primary ENI in a CVM range: %v", r)
	}
	// With check_associate off, any ENI of the subnet may take it.
	if r := etcdtest.Must[*arpbrokerv1.ReportArpAnnouncementResponse](t)(c.broker.ReportArpAnnouncement(w.ctx, garp(sess, w.p4, w.open.GetVip()))); r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED {
		t.Errorf("open HAVIP: %v", r)
	}
	// A refresh from the owner writes nothing: the fencing revision stays.
	again := etcdtest.Must[*arpbrokerv1.ReportArpAnnouncementResponse](t)(c.broker.ReportArpAnnouncement(w.ctx, garp(sess, w.s1, eniVIP)))
	if again.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_REFRESHED || again.GetRevision() != first.GetRevision() {
		t.Errorf("refresh: %v, want REFRESHED at %d", again, first.GetRevision())
	}
}
