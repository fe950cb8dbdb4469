package telemetry_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/metrics/metricstest"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/tenant"
)

// rulesFile holds the recording and alerting rules (tested by rules_test.go).
const rulesFile = "../../deploy/prometheus/rules.yml"

// TestPrometheusScrapesEveryDaemon runs every daemon as a process, each serving /metrics on its
// own listener, drives each service (a subnet and a CVM, a HAVIP, an agent's claims accepted and
// rejected, a NAT rule streamed, a call through the gateway), checks each /metrics body with
// promtool, then has the real Prometheus scrape them all with the project's rules loaded and
// reads the series back through its query API.
func TestPrometheusScrapesEveryDaemon(t *testing.T) {
	promtool := tool(t, "promtool")
	s := startStack(t, []string{"ipamd", "havipd", "arpbrokerd", "eipd", "gatewayd"})
	ctx := tenant.Outgoing(context.Background(), account)
	ipam := ipamv1.NewIpamServiceClient(etcdtest.DialAs(t, s.procs["ipamd"].Addr, mtlstest.Operator))
	havip := havipv1.NewHaVipServiceClient(etcdtest.DialAs(t, s.procs["havipd"].Addr, mtlstest.Operator))
	eipConn := etcdtest.DialAs(t, s.procs["eipd"].Addr, mtlstest.Operator)

	// Inventory: a /24 (253 usable addresses), a CVM on host-a, a HAVIP any ENI may own.
	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(ipam.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	subnet := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(ipam.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.0.0/24"})).GetSubnet().GetSubnetId()
	eni := etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(ipam.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: "web", SubnetId: subnet, HostId: "host-a"})).GetPrimaryNetworkInterface()
	open := false
	hv := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: subnet, HavipName: "h", CheckAssociate: &open})).GetHavip()

	// NAT rules: a watcher, then an EIP bound to the HAVIP.
	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	watch := etcdtest.Must[eipv1.NatRuleService_WatchNatRulesClient](t)(eipv1.NewNatRuleServiceClient(eipConn).WatchNatRules(wctx, &eipv1.WatchNatRulesRequest{}))
	if m, err := watch.Recv(); err != nil || !m.GetSnapshot() {
		t.Fatalf("first NAT message: %v, %v; want the snapshot", m, err)
	}
	eip := etcdtest.Must[*eipv1.AllocateAddressesResponse](t)(eipv1.NewEipServiceClient(eipConn).AllocateAddresses(ctx, &eipv1.AllocateAddressesRequest{AddressCount: 1})).GetAddressSet()[0]
	etcdtest.Must[*havipv1.HaVipAssociateAddressIpResponse](t)(havip.HaVipAssociateAddressIp(ctx, &havipv1.HaVipAssociateAddressIpRequest{HavipId: hv.GetHavipId(), AddressIp: eip.GetAddressIp()}))
	for {
		m, err := watch.Recv()
		if err != nil {
			t.Fatalf("NAT rule stream: %v", err)
		}
		if len(m.GetRules()) > 0 && m.GetRules()[0].GetAddressId() == eip.GetAddressId() {
			break
		}
	}

	// The agent of host-a: a session, then the HAVIP's GARP from the CVM's ENI (seen 50 ms
	// before it was sent), accepted once a leader is elected; and one for an unknown VIP.
	agent := arpbrokerv1.NewArpBrokerServiceClient(etcdtest.DialAs(t, s.procs["arpbrokerd"].Addr, mtlstest.Agent("host-a")))
	sess := etcdtest.Must[*arpbrokerv1.OpenSessionResponse](t)(agent.OpenSession(context.Background(), &arpbrokerv1.OpenSessionRequest{AgentId: "agent-a", HostId: "host-a", TtlSeconds: 10})).GetSessionId()
	go func() { // renewed as an agent does, every third of its TTL, while the test runs
		tick := time.NewTicker(3 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
				_, _ = agent.KeepAliveSession(wctx, &arpbrokerv1.KeepAliveSessionRequest{SessionId: sess, AgentId: "agent-a"})
			}
		}
	}()
	garp := func(vip string) *arpbrokerv1.ReportArpAnnouncementRequest {
		return &arpbrokerv1.ReportArpAnnouncementRequest{AgentId: "agent-a", SessionId: sess, NetworkInterfaceId: eni.GetNetworkInterfaceId(),
			EthernetSourceMac: eni.GetMacAddress(), SenderMac: eni.GetMacAddress(), SenderIp: vip, TargetIp: vip,
			Operation: arpbrokerv1.ArpOperation_ARP_OPERATION_REQUEST, SeenAge: durationpb.New(50 * time.Millisecond)}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := agent.ReportArpAnnouncement(context.Background(), garp(hv.GetVip()))
		if err == nil {
			if r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED {
				t.Fatalf("claim: %v, want accepted", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no broker leader: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling for the election
	}
	// On a report stream, which stays open.
	stream := etcdtest.Must[arpbrokerv1.ArpBrokerService_StreamArpAnnouncementsClient](t)(agent.StreamArpAnnouncements(wctx))
	if err := stream.Send(&arpbrokerv1.StreamArpAnnouncementsRequest{Report: garp("10.0.0.250")}); err != nil {
		t.Fatal(err)
	}
	if r, err := stream.Recv(); err != nil || r.GetResult().GetReason() != "UnknownVip" {
		t.Fatalf("claim of an unknown VIP: %v, %v; want rejected, UnknownVip", r, err)
	}

	// Through the gateway.
	if code, body := s.rest("GET", "/v1/vpcs", "metrics-test", nil); code != 200 {
		t.Fatalf("GET /v1/vpcs: %d %v", code, body)
	}
	available := etcdtest.Must[*ipamv1.DescribeSubnetsResponse](t)(ipam.DescribeSubnets(ctx, &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{subnet}})).GetSubnetSet()[0].GetAvailableIpAddressCount()
	if available != 253-2 { // the CVM's address and the HAVIP's
		t.Errorf("subnet has %d addresses free, want 251", available)
	}

	// Every /metrics body passes promtool's checks.
	jobs := map[string]string{}
	for name, p := range s.procs {
		jobs[name] = p.MetricsAddr
		body := metricstest.Get(t, p.MetricsAddr)
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics of %s: %v\n%s", name, err, out)
		}
	}

	p := startPrometheus(t, jobs, rulesFile)
	p.awaitTargetsUp(jobs)
	atLeast := func(n float64) func(float64) bool { return func(v float64) bool { return v >= n } }
	equals := func(n float64) func(float64) bool { return func(v float64) bool { return v == n } }
	for _, q := range []struct {
		expr, want string
		ok         func(float64) bool
	}{
		// RPC latency by method and code, servers' and clients'.
		{`sum(rpc_server_call_duration_seconds_count{job="ipamd",rpc_method="ipam.v1.IpamService/CreateSubnet",rpc_response_status_code="OK"})`, "1", equals(1)},
		{`sum(rpc_server_call_duration_seconds_count{job="havipd",rpc_method="havip.v1.HaVipService/CreateHaVip"})`, "1", equals(1)},
		{`sum(rpc_client_call_duration_seconds_count{job="gatewayd",service_name="gatewayd",rpc_method="ipam.v1.IpamService/DescribeVpcs"})`, "1", equals(1)},
		{`sum(rpc_client_call_duration_seconds_count{job="havipd",rpc_method=~"ipam.v1.IpamService/.+"})`, ">= 1", atLeast(1)},
		{`sum(rpc_server_call_duration_seconds_count{job="arpbrokerd",rpc_method="arpbroker.v1.ArpBrokerService/ReportArpAnnouncement",rpc_response_status_code="OK"})`, "1", equals(1)},
		// etcd transactions and the caches.
		{`sum(havip_etcd_txn_duration_seconds_count{job="ipamd",result="succeeded"})`, ">= 3", atLeast(3)},
		{`sum(havip_etcd_txn_duration_seconds_count{job="havipd"})`, ">= 1", atLeast(1)},
		{`sum(havip_kvcache_sync_wait_seconds_count{job="ipamd"})`, ">= 1", atLeast(1)},
		{`havip_kvcache_items{job="havipd",prefix="/havip/havip/havip/"}`, "1 (the HAVIP)", equals(1)},
		// Free addresses of the subnet, as DescribeSubnets says, and the recording rule.
		{`havip_ipam_subnet_free_addresses{subnet_id="` + subnet + `",account="` + account + `"}`, "251", equals(float64(available))},
		{`havip_ipam_subnet_addresses{subnet_id="` + subnet + `"}`, "253", equals(253)},
		{`havip:ipam_subnet_free:ratio{subnet_id="` + subnet + `"}`, "251/253", equals(float64(available) / 253)},
		// The broker: its leader, sessions, claims and the owner change.
		{`havip:arpbroker_leaders:sum`, "1", equals(1)},
		{`sum(havip_arpbroker_leader_changes_total{change="acquired"})`, "1", equals(1)},
		{`max(havip_arpbroker_agent_sessions)`, "1", equals(1)},
		{`sum(havip_arpbroker_report_streams)`, "1", equals(1)},
		{`sum(havip_arpbroker_claims_total{result="accepted",reason=""})`, "1", equals(1)},
		{`sum(havip_arpbroker_claims_total{result="rejected",reason="UnknownVip"})`, "1", equals(1)},
		{`sum(havip_arpbroker_owner_change_latency_seconds_count{claim="immediate"})`, "1", equals(1)},
		{`sum(havip_arpbroker_owner_change_latency_seconds_sum{claim="immediate"})`, ">= 0.05 (the age the agent gave)", atLeast(0.05)},
		// The NAT rule streamed to the watcher.
		{`sum(havip_eip_nat_rule_stream_lag_seconds_count{job="eipd"})`, ">= 1", atLeast(1)},
	} {
		p.awaitValue(q.expr, q.want, q.ok)
	}
	// No alert fires on a healthy stack.
	if res, err := p.query(`ALERTS{alertstate="firing"}`); err != nil || len(res) > 0 {
		t.Errorf("firing alerts: %v (err %v)", res, err)
	}
}
