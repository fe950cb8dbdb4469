// Package loadtest measures throughput and latency for the benchmarks that compare with etcd.
package loadtest

import (
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
