package security_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/arpbroker/broker"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

// TestAgentSpeaksForItsOwnHostOnly: as Kubernetes' NodeRestriction limits a kubelet to its
// node, the agent of host-b, with its own valid certificate, cannot move a VIP owned on host-a:
// not by claiming host-a's ENI under its own session (rejected, recorded), not by reporting or
// renewing under host-a's agent's session, not by opening a session for host-a. The owner stays
// host-a's ENI throughout. Session IDs are random, not etcd's sequence.
func TestAgentSpeaksForItsOwnHostOnly(t *testing.T) {
	conn, _ := etcdtest.Serve(t, etcdEndpoint, ipam.Module, service.Must(havip.NewModule(havip.Config{})), service.Must(arpbroker.NewModule(arpbroker.Config{})))
	ctx := tenant.Outgoing(context.Background(), "acct-agents")
	ipamc, havipc := ipamv1.NewIpamServiceClient(conn), havipv1.NewHaVipServiceClient(conn)
	hostA := arpbrokerv1.NewArpBrokerServiceClient(etcdtest.DialAs(t, conn.Target(), mtlstest.Agent("host-a")))
	hostB := arpbrokerv1.NewArpBrokerServiceClient(etcdtest.DialAs(t, conn.Target(), mtlstest.Agent("host-b")))
	operator := arpbrokerv1.NewArpBrokerServiceClient(conn)
	cli := etcdtest.Client(t, etcdEndpoint)

	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(ipamc.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	subnet := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(ipamc.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.1.0/24"})).GetSubnet().GetSubnetId()
	eni := func(host string) *ipamv1.NetworkInterface {
		return etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(ipamc.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "vm", SubnetId: subnet, HostId: host})).GetPrimaryNetworkInterface()
	}
	onA, onB := eni("host-a"), eni("host-b")
	check := false
	hv := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(havipc.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: subnet, HavipName: "h", CheckAssociate: &check})).GetHavip()
	garp := func(agentID string, session int64, e *ipamv1.NetworkInterface) *arpbrokerv1.ReportArpAnnouncementRequest {
		return &arpbrokerv1.ReportArpAnnouncementRequest{AgentId: agentID, SessionId: session, NetworkInterfaceId: e.GetNetworkInterfaceId(), EthernetSourceMac: e.GetMacAddress(),
			SenderMac: e.GetMacAddress(), SenderIp: hv.GetVip(), TargetIp: hv.GetVip(), Operation: arpbrokerv1.ArpOperation_ARP_OPERATION_REQUEST}
	}
	open := func(c arpbrokerv1.ArpBrokerServiceClient, agentID, host string) (int64, error) {
		r, err := c.OpenSession(context.Background(), &arpbrokerv1.OpenSessionRequest{AgentId: agentID, HostId: host, TtlSeconds: 30})
		return r.GetSessionId(), err
	}
	sessA, err := open(hostA, "agent-a", "")
	if err != nil {
		t.Fatal(err)
	}
	sessB, err := open(hostB, "agent-b", "host-b")
	if err != nil {
		t.Fatal(err)
	}
	// host-a's agent announces its ENI: the owner.
	for deadline := time.Now().Add(10 * time.Second); ; {
		r, err := hostA.ReportArpAnnouncement(context.Background(), garp("agent-a", sessA, onA))
		if err == nil && r.GetResult() == arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED {
			break
		}
		if err == nil || time.Now().After(deadline) {
			t.Fatalf("host-a's claim: %v %v", r, err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the broker's election
	}
	owner := func() records.Owner {
		t.Helper()
		resp, err := cli.Get(context.Background(), records.OwnerKey(hv.GetHavipId()))
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("owner record: %v %v", resp, err)
		}
		o, err := kvcache.DecodeJSON[records.Owner]("", resp.Kvs[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	before := owner()
	if before.NetworkInterfaceID != onA.GetNetworkInterfaceId() || before.HostID != "host-a" {
		t.Fatalf("owner %+v, want host-a's ENI", before)
	}
	rejections := func() int {
		rs := etcdtest.Must[*arpbrokerv1.ListArpRejectionsResponse](t)(operator.ListArpRejections(context.Background(), &arpbrokerv1.ListArpRejectionsRequest{HavipId: hv.GetHavipId()}))
		return len(rs.GetRejectionSet())
	}

	// 1. host-b's agent claims host-a's ENI under its own session: rejected and recorded.
	n := rejections()
	r := etcdtest.Must[*arpbrokerv1.ReportArpAnnouncementResponse](t)(hostB.ReportArpAnnouncement(context.Background(), garp("agent-b", sessB, onA)))
	if r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_REJECTED || r.GetReason() != broker.ReasonWrongHost {
		t.Errorf("host-b's agent claiming host-a's ENI: %v", r)
	}
	if rejections() != n+1 {
		t.Errorf("the forged claim was not recorded")
	}
	// 2. host-b's agent reports under host-a's agent's session, in its name: no such session for it.
	n = rejections()
	_, err = hostB.ReportArpAnnouncement(context.Background(), garp("agent-a", sessA, onB))
	if status.Code(err) != codes.NotFound {
		t.Errorf("host-b's agent reporting under host-a's session: %v, want NotFound", err)
	}
	if rejections() != n+1 {
		t.Errorf("the stolen-session claim was not recorded")
	}
	// Recorded as host-b's doing, whatever agent_id it gave.
	newest := etcdtest.Must[*arpbrokerv1.ListArpRejectionsResponse](t)(operator.ListArpRejections(context.Background(), &arpbrokerv1.ListArpRejectionsRequest{HavipId: hv.GetHavipId()})).GetRejectionSet()[0]
	if newest.GetIdentity() != mtlstest.Agent("host-b").String() || newest.GetAgentId() != "agent-a" {
		t.Errorf("the stolen-session claim is recorded as %q (agent_id %q), want host-b's identity", newest.GetIdentity(), newest.GetAgentId())
	}
	// 3. nor renew it,
	if _, err := hostB.KeepAliveSession(context.Background(), &arpbrokerv1.KeepAliveSessionRequest{SessionId: sessA, AgentId: "agent-a"}); status.Code(err) != codes.NotFound {
		t.Errorf("host-b's agent renewing host-a's session: %v, want NotFound", err)
	}
	// 4. nor open a session for host-a.
	if _, err := open(hostB, "agent-a", "host-a"); status.Code(err) != codes.PermissionDenied || apierr.Reason(err) != apierr.ReasonUnauthorizedOperation {
		t.Errorf("host-b's agent opening a session for host-a: %v, want PermissionDenied", err)
	}
	if after := owner(); after.NetworkInterfaceID != before.NetworkInterfaceID || after.Session != before.Session {
		t.Errorf("the owner changed: %+v, was %+v", after, before)
	}
	// host-a's own agent still renews its session.
	if _, err := hostA.KeepAliveSession(context.Background(), &arpbrokerv1.KeepAliveSessionRequest{SessionId: sessA, AgentId: "agent-a"}); err != nil {
		t.Errorf("host-a renewing its session: %v", err)
	}

	// Session IDs are not etcd's sequence: far from each other and from a lease etcd numbers.
	lease, err := cli.Grant(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	seen := []int64{int64(lease.ID), sessA, sessB}
	for range 8 {
		id, err := open(hostA, "agent-a", "host-a")
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, id)
	}
	for i := range seen {
		for j := range i {
			if d := seen[i] - seen[j]; d > -1<<32 && d < 1<<32 {
				t.Errorf("session IDs %x and %x are %d apart", seen[i], seen[j], d)
			}
		}
	}
}
