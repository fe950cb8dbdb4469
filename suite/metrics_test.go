package suite_test

import (
	"strings"
	"testing"
	"time"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/logging/logtest"
	"github.com/openhavip/havip/platform/metrics"
	"github.com/openhavip/havip/platform/metrics/metricstest"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/suite"
)

// TestMetrics: with -metrics-addr, the suite serves every service's metrics on one listener and
// says where: calls by method and code, and the broker's leadership.
func TestMetrics(t *testing.T) {
	out := &logtest.Buffer{}
	r, conn, _ := run(t, suite.Config{DataDir: t.TempDir(), Metrics: metrics.Config{Addr: "127.0.0.1:0"}}, out)
	if r.MetricsAddr == "" || !strings.Contains(out.String(), "Prometheus metrics on http://"+r.MetricsAddr+"/metrics") {
		t.Fatalf("metrics address %q not printed:\n%s", r.MetricsAddr, out.String())
	}
	ctx := tenant.Outgoing(t.Context(), "acct-metrics")
	if _, err := ipamv1.NewIpamServiceClient(conn).CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"rpc_server_call_duration_seconds": {"service_name": "havip-suite", "rpc_method": "ipam.v1.IpamService/CreateVpc", "rpc_response_status_code": "OK"},
		"havip_arpbroker_leader":           {"service_name": "havip-suite"},
		"havip_etcd_txn_duration_seconds":  {"service_name": "havip-suite", "result": "succeeded"},
	}
	deadline := time.Now().Add(10 * time.Second)
	for name, labels := range want {
		for { // the broker's election takes a moment
			n, ok := metricstest.Value(metricstest.Families(t, metricstest.Get(t, r.MetricsAddr)), name, labels)
			if ok && n >= 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s%v: %v (found %v), want at least 1", name, labels, n, ok)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
