package loadtest_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/loadtest"
)

// The raw etcd baseline a write benchmark reports beside its own figure: create-if-absent
// transactions from 4 clients, 100 in all, and the median latency of a read. These helpers
// belong in a Benchmark function, which the repository runs once (-benchtime 1x) with fixed
// totals, so the function ignores b.N; here testing.Benchmark provides the *testing.B. Rates
// vary from run to run: the example prints what does not.
func ExampleThroughput() {
	cli, stop, err := etcdtest.StartClient()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()

	res := testing.Benchmark(func(b *testing.B) {
		ops := loadtest.Throughput(b, 4, 100, loadtest.CreateIfAbsent(cli, "/bench/raw/"))
		p50 := loadtest.P50(b, 10, func() error {
			_, err := cli.Get(ctx, "/bench/raw/0")
			return err
		})
		b.ReportMetric(ops, "raw-txn-4clients-ops/s")
		b.ReportMetric(float64(p50.Nanoseconds()), "get-p50-ns")
	})

	resp, err := cli.Get(ctx, "/bench/raw/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("keys created:", resp.Count)
	fmt.Println("metrics:", slices.Sorted(maps.Keys(res.Extra)))
	// Output:
	// keys created: 100
	// metrics: [get-p50-ns raw-txn-4clients-ops/s]
}

// The tail of a set of latencies.
func ExampleQuantile() {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	fmt.Println(loadtest.Quantile(d, 0.5), loadtest.Quantile(d, 0.99), loadtest.Quantile(d, 1))
	// Output: 50ms 99ms 100ms
}
