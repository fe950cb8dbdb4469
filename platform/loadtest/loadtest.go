// Package loadtest measures throughput and latency for the benchmarks that compare with etcd.
package loadtest

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Throughput runs op from clients goroutines until total ops are done and returns ops/s. The
// first error fails tb.
func Throughput(tb testing.TB, clients, total int, op func(i int) error) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				if err := op(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		tb.Fatal(err)
	}
	return float64(total) / time.Since(start).Seconds()
}

// P50 runs op n times in a row and returns the median latency.
func P50(tb testing.TB, n int, op func() error) time.Duration {
	d := make([]time.Duration, n)
	for i := range d {
		t0 := time.Now()
		if err := op(); err != nil {
			tb.Fatal(err)
		}
		d[i] = time.Since(t0)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[n/2]
}

// CreateIfAbsent is the raw etcd baseline of the write benchmarks: op i creates key prefix+i in
// a transaction that requires it absent.
func CreateIfAbsent(cli *clientv3.Client, prefix string) func(i int) error {
	return func(i int) error {
		key := prefix + strconv.Itoa(i)
		_, err := cli.Txn(context.Background()).If(clientv3.Compare(clientv3.Version(key), "=", 0)).Then(clientv3.OpPut(key, `{"account":"bench"}`)).Commit()
		return err
	}
}

// Quantile returns the q-quantile (0 < q ≤ 1) of d, which it sorts.
func Quantile(d []time.Duration, q float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(float64(len(d))*q+0.999999) - 1
	return d[max(0, min(i, len(d)-1))]
}
