package arpbroker_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/arpbroker/broker"
)

// revocationBound is how soon the broker must remove an owner that lost the right to its HAVIP.
const revocationBound = time.Second

// TestOwnerRevokedWhenRightEnds: whenever the set of ENIs allowed to hold a HAVIP changes so
// that its owner is no longer in it — the owner ENI detached, its CVM taken out of the range or
// deleted, check_associate turned on — the HAVIP turns UNBIND within a second, and the revocation is
// recorded with the reason (issue 12, defect 3). A detached ENI's claim is then rejected
// (defect 4).
func TestOwnerRevokedWhenRightEnds(t *testing.T) {
	c := suite(t, arpbroker.Config{HoldDown: 50 * time.Millisecond})
	w := build(t, c)
	sess := session(t, c, 30)
	awaitLeader(t, c, sess)
	off, on := false, true
	for _, tc := range []struct {
		name   string
		havip  *havipv1.HaVip
		owner  nic
		revoke func(t *testing.T)
		reason string
	}{
		{"owner ENI detached", w.eniRange, w.s1, func(t *testing.T) {
			etcdtest.Must[*ipamv1.DetachNetworkInterfaceResponse](t)(c.ipam.DetachNetworkInterface(w.ctx, &ipamv1.DetachNetworkInterfaceRequest{NetworkInterfaceId: w.s1.id}))
		}, broker.ReasonNotAttached},
		{"owner ENI attached to a CVM outside the range", w.eniRange, w.s2, func(t *testing.T) {
			etcdtest.Must[*ipamv1.DetachNetworkInterfaceResponse](t)(c.ipam.DetachNetworkInterface(w.ctx, &ipamv1.DetachNetworkInterfaceRequest{NetworkInterfaceId: w.s2.id}))
			etcdtest.Must[*ipamv1.AttachNetworkInterfaceResponse](t)(c.ipam.AttachNetworkInterface(w.ctx, &ipamv1.AttachNetworkInterfaceRequest{NetworkInterfaceId: w.s2.id, InstanceId: w.p4.instance}))
		}, ""},
		{"owner CVM taken out of the range", w.cvmRange, w.p1, func(t *testing.T) {
			etcdtest.Must[*havipv1.DisassociateHaVipInstanceResponse](t)(c.havip.DisassociateHaVipInstance(w.ctx, &havipv1.DisassociateHaVipInstanceRequest{
				HavipId: w.cvmRange.GetHavipId(), HavipAssociationSet: []*havipv1.HaVipAssociation{{InstanceId: w.p1.instance, InstanceType: "CVM"}}}))
		}, broker.ReasonOutsideRange},
		{"owner ENI's CVM deleted", w.cvmRange, w.p2, func(t *testing.T) {
			// A CVM goes only without secondary ENIs: detach CVM2's (s2, unless an earlier
			// case moved it), then delete the CVM with its primary ENI, the owner.
			enis := etcdtest.Must[*ipamv1.DescribeNetworkInterfacesResponse](t)(c.ipam.DescribeNetworkInterfaces(w.ctx, &ipamv1.DescribeNetworkInterfacesRequest{
				Filters: []*ipamv1.Filter{{Name: "instance-id", Values: []string{w.p2.instance}}}}))
			for _, e := range enis.GetNetworkInterfaceSet() {
				if !e.GetPrimary() {
					etcdtest.Must[*ipamv1.DetachNetworkInterfaceResponse](t)(c.ipam.DetachNetworkInterface(w.ctx, &ipamv1.DetachNetworkInterfaceRequest{NetworkInterfaceId: e.GetNetworkInterfaceId()}))
				}
			}
			etcdtest.Must[*ipamv1.DeleteInstanceResponse](t)(c.ipam.DeleteInstance(w.ctx, &ipamv1.DeleteInstanceRequest{InstanceId: w.p2.instance}))
		}, broker.ReasonUnknownENI},
		{"check_associate turned on", w.open, w.p4, func(t *testing.T) {
			etcdtest.Must[*havipv1.ModifyHaVipAttributeResponse](t)(c.havip.ModifyHaVipAttribute(w.ctx, &havipv1.ModifyHaVipAttributeRequest{HavipId: w.open.GetHavipId(), CheckAssociate: &on}))
		}, broker.ReasonOutsideRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.havip.GetHavipId()
			if tc.havip == w.open {
				etcdtest.Must[*havipv1.ModifyHaVipAttributeResponse](t)(c.havip.ModifyHaVipAttribute(w.ctx, &havipv1.ModifyHaVipAttributeRequest{HavipId: id, CheckAssociate: &off}))
			}
			r := etcdtest.Must[*arpbrokerv1.ReportArpAnnouncementResponse](t)(c.broker.ReportArpAnnouncement(w.ctx, garp(sess, tc.owner, tc.havip.GetVip())))
			if r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED {
				t.Fatalf("claim by %s: %v", tc.owner.id, r)
			}
			awaitState(t, c, w, id, tc.owner.id, 5*time.Second)
			tc.revoke(t)
			start := time.Now()
			awaitState(t, c, w, id, "", revocationBound)
			t.Logf("revoked %v after the change", time.Since(start).Round(time.Millisecond))
			// The broker records the revocation just after it writes it: await the record too.
			for deadline := time.Now().Add(revocationBound); ; {
				rs := etcdtest.Must[*arpbrokerv1.ListArpRejectionsResponse](t)(c.broker.ListArpRejections(context.Background(), &arpbrokerv1.ListArpRejectionsRequest{HavipId: id}))
				if slices.ContainsFunc(rs.GetRejectionSet(), func(r *arpbrokerv1.ArpRejection) bool {
					return r.GetReason() == broker.ReasonRevoked && r.GetNetworkInterfaceId() == tc.owner.id
				}) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no revocation recorded: %v", rs.GetRejectionSet())
				}
				time.Sleep(20 * time.Millisecond) // polling for the broker's record
			}
			if tc.reason != "" { // the former owner's next announcement is rejected for the same rule
				r := etcdtest.Must[*arpbrokerv1.ReportArpAnnouncementResponse](t)(c.broker.ReportArpAnnouncement(w.ctx, garp(sess, tc.owner, tc.havip.GetVip())))
				if r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_REJECTED || r.GetReason() != tc.reason {
					t.Fatalf("claim after the revocation: %v, want rejected for %s", r, tc.reason)
				}
			}
		})
	}
}

// TestClaimsNeedTheAgentsSession: a claim without a session, on an unknown or ended session,
// or on another agent's session is refused with a clear code and writes no ownership (issue
// 12, defect 5); each refusal is recorded.
func TestClaimsNeedTheAgentsSession(t *testing.T) {
	c := suite(t, arpbroker.Config{HoldDown: 50 * time.Millisecond})
	w := build(t, c)
	cli := etcdtest.Client(t, etcdEndpoint)
	sess := session(t, c, 30)
	awaitLeader(t, c, sess)
	ended := session(t, c, 2)
	if _, err := etcdtest.Client(t, etcdEndpoint).Revoke(context.Background(), clientv3.LeaseID(ended.of(w.s1.host))); err != nil {
		t.Fatal(err) // the agent died and its session ended
	}
	vip := w.eniRange.GetVip()
	other := garp(sess, w.s1, vip)
	other.AgentId = "another-agent"
	withSession := func(id int64) *arpbrokerv1.ReportArpAnnouncementRequest {
		r := garp(sess, w.s1, vip)
		r.SessionId = id
		return r
	}
	otherHost := garp(sess, w.s1, vip) // the agent of host-2 speaks for an ENI of host-1
	otherHost.AgentId, otherHost.SessionId = agentOf(w.p2.host), sess.of(w.p2.host)
	for _, tc := range []struct {
		name   string
		req    *arpbrokerv1.ReportArpAnnouncementRequest
		code   codes.Code
		reason string
	}{
		{"no session", withSession(0), codes.InvalidArgument, apierr.ReasonEmpty},
		{"an unknown session", withSession(0x7fff0000aaaa), codes.NotFound, apierr.ReasonResourceNotFound},
		{"an ended session", withSession(ended.of(w.s1.host)), codes.NotFound, apierr.ReasonResourceNotFound},
		{"another agent's session", other, codes.NotFound, apierr.ReasonResourceNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.broker.ReportArpAnnouncement(w.ctx, tc.req)
			if status.Code(err) != tc.code || apierr.Reason(err) != tc.reason {
				t.Fatalf("got %v (reason %q), want %v %s", err, apierr.Reason(err), tc.code, tc.reason)
			}
			if resp, err := cli.Get(context.Background(), records.OwnerKey(w.eniRange.GetHavipId())); err != nil || len(resp.Kvs) != 0 {
				t.Fatalf("a refused claim wrote an owner: %v %v", resp, err)
			}
		})
	}
	rs := etcdtest.Must[*arpbrokerv1.ListArpRejectionsResponse](t)(c.broker.ListArpRejections(context.Background(), &arpbrokerv1.ListArpRejectionsRequest{NetworkInterfaceId: w.s1.id}))
	if n := len(rs.GetRejectionSet()); n == 0 || rs.GetRejectionSet()[0].GetReason() != broker.ReasonNoSession {
		t.Fatalf("refusals recorded under the ENI: %v", rs.GetRejectionSet())
	}
	// An agent speaks only for the ENIs of its own host.
	r := etcdtest.Must[*arpbrokerv1.ReportArpAnnouncementResponse](t)(c.broker.ReportArpAnnouncement(w.ctx, otherHost))
	if r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_REJECTED || r.GetReason() != broker.ReasonWrongHost {
		t.Fatalf("a claim by another host's agent: %v", r)
	}
	// The tenant sees both refusals on its HAVIP, told in its terms: no agent's session number,
	// agent ID or host (platform details) in what it reads.
	mine := etcdtest.Must[*havipv1.DescribeHaVipArpRejectionsResponse](t)(c.havip.DescribeHaVipArpRejections(w.ctx, &havipv1.DescribeHaVipArpRejectionsRequest{HavipId: w.eniRange.GetHavipId()}))
	seen := map[string]bool{}
	for _, x := range mine.GetRejectionSet() {
		seen[x.GetReason()] = true
		for _, secret := range []string{"another-agent", agentOf(w.s1.host), agentOf(w.p2.host), w.p2.host, strconv.FormatInt(ended.of(w.s1.host), 10), strconv.FormatInt(0x7fff0000aaaa, 10)} {
			if strings.Contains(x.GetMessage(), secret) {
				t.Errorf("the tenant reads %q in the %s rejection: %q", secret, x.GetReason(), x.GetMessage())
			}
		}
	}
	if !seen[broker.ReasonNoSession] || !seen[broker.ReasonWrongHost] {
		t.Errorf("the tenant's rejections: %v, want %s and %s", mine.GetRejectionSet(), broker.ReasonNoSession, broker.ReasonWrongHost)
	}
	// And renews only its own session.
	if _, err := c.broker.KeepAliveSession(context.Background(), &arpbrokerv1.KeepAliveSessionRequest{SessionId: sess.of(w.s1.host), AgentId: "another-agent"}); status.Code(err) != codes.NotFound {
		t.Fatalf("another agent renewed the session: %v", err)
	}
}

// TestEveryRejectionRecorded: a rejection decided before the HAVIP is resolved (a spoofed
// Ethernet source) is recorded too, findable by HAVIP, by VIP and by ENI (issue 12, defect 6).
func TestEveryRejectionRecorded(t *testing.T) {
	c := suite(t, arpbroker.Config{})
	w := build(t, c)
	sess := session(t, c, 30)
	awaitLeader(t, c, sess)
	spoof := garp(sess, w.s2, w.eniRange.GetVip())
	spoof.EthernetSourceMac = w.s1.mac
	r := etcdtest.Must[*arpbrokerv1.ReportArpAnnouncementResponse](t)(c.broker.ReportArpAnnouncement(w.ctx, spoof))
	if r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_REJECTED || r.GetReason() != broker.ReasonMACMismatch {
		t.Fatalf("spoofed claim: %v", r)
	}
	for _, req := range []*arpbrokerv1.ListArpRejectionsRequest{
		{HavipId: w.eniRange.GetHavipId()}, {Vip: w.eniRange.GetVip()}, {NetworkInterfaceId: w.s2.id},
	} {
		rs := etcdtest.Must[*arpbrokerv1.ListArpRejectionsResponse](t)(c.broker.ListArpRejections(context.Background(), req))
		if !slices.ContainsFunc(rs.GetRejectionSet(), func(x *arpbrokerv1.ArpRejection) bool {
			return x.GetReason() == broker.ReasonMACMismatch && x.GetHavipId() == w.eniRange.GetHavipId() && x.GetVip() == w.eniRange.GetVip() && x.GetNetworkInterfaceId() == w.s2.id
		}) {
			t.Errorf("%v: %v", req, rs.GetRejectionSet())
		}
	}
	if _, err := c.broker.ListArpRejections(context.Background(), &arpbrokerv1.ListArpRejectionsRequest{}); apierr.Reason(err) != apierr.ReasonCoexist {
		t.Errorf("a list naming nothing: %v", err)
	}
}
