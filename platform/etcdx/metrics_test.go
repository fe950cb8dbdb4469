package etcdx_test

import (
	"context"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/etcdx"
	"github.com/openhavip/havip/platform/metrics/metricstest"
)

// TestTxnMetrics: every transaction of a client from Connect is timed by its result
// (havip_etcd_txn_duration_seconds): succeeded, compare_failed, error; other calls are not.
func TestTxnMetrics(t *testing.T) {
	addr := metricstest.Start(t)
	endpoint, stop, err := etcdtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cli, err := etcdx.Connect(context.Background(), []string{endpoint})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	count := func(result string) float64 {
		v, _ := metricstest.Value(metricstest.Families(t, metricstest.Get(t, addr)), "havip_etcd_txn_duration_seconds", map[string]string{"result": result})
		return v
	}
	before := map[string]float64{"succeeded": count("succeeded"), "compare_failed": count("compare_failed"), "error": count("error")}
	ctx := context.Background()
	create := func() (*clientv3.TxnResponse, error) {
		return cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("/txn-metrics"), "=", 0)).Then(clientv3.OpPut("/txn-metrics", "v")).Commit()
	}
	if r, err := create(); err != nil || !r.Succeeded {
		t.Fatalf("first create: %v, %v", r, err)
	}
	if r, err := create(); err != nil || r.Succeeded {
		t.Fatalf("second create: %v, %v", r, err)
	}
	if _, err := cli.Get(ctx, "/txn-metrics"); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := cli.Txn(canceled).Then(clientv3.OpPut("/txn-metrics", "w")).Commit(); err == nil {
		t.Fatal("a transaction with a canceled context succeeded")
	}
	for result, want := range map[string]float64{"succeeded": 1, "compare_failed": 1, "error": 1} {
		if got := count(result) - before[result]; got != want {
			t.Errorf("%s: %v more, want %v", result, got, want)
		}
	}
}
