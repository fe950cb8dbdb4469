package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/ownercache"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/services/havip/store"
)

// benchHaVip is HAVIP number i of the load benchmark: one account, one VPC, 16 subnets, a name
// and a VIP of its own, two CVMs of a pool of 2,000 in its switch range.
func benchHaVip(i int, account string, created time.Time) records.HaVip {
	return records.HaVip{
		ID: ids.FromNumber(ids.HaVip, uint64(i), 1), Account: account, Name: fmt.Sprintf("hv-%d", i),
		VpcID: "vpc-bench000", SubnetID: fmt.Sprintf("subnet-bench%03d", i%16),
		VIP:            netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
		CheckAssociate: true,
		Associations: []records.Association{
			{InstanceID: ids.FromNumber(ids.Instance, uint64(i%2000), 1), Type: records.TypeCVM},
			{InstanceID: ids.FromNumber(ids.Instance, uint64((i+1)%2000), 1), Type: records.TypeCVM},
		},
		Created: created,
	}
}

// writeHaVips puts HAVIPs [from, to) straight into etcd, 100 to a transaction.
func writeHaVips(ctx context.Context, cli *clientv3.Client, account string, from, to int) error {
	const workers, batch = 8, 100
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for lo := from + w*batch; lo < to && errs[w] == nil; lo += workers * batch {
				ops := make([]clientv3.Op, 0, batch)
				for i := lo; i < min(lo+batch, to); i++ {
					h := benchHaVip(i, account, time.Now().UTC())
					ops = append(ops, clientv3.OpPut(records.HaVipKey(h.ID), records.EncodeHaVip(h)))
				}
				_, errs[w] = cli.Txn(ctx).Then(ops...).Commit()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// startStore starts a store over the n HAVIPs of account in etcd, and returns how long Start took
// and how many bytes of heap the started store holds per HAVIP. It returns once the store is
// stopped and collected, so that the next measure starts from a heap without it.
func startStore(b *testing.B, cli *clientv3.Client, account string, n int) (time.Duration, float64) {
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan struct{})
	defer func() {
		cancel()
		for deadline := time.Now().Add(30 * time.Second); ; runtime.GC() {
			select {
			case <-gone:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				b.Fatal("the stopped store is still referenced")
			}
		}
	}()
	before := heapAfterGC()
	st := store.New(cli, havipcache.New(cli, etcdtest.Quiet), ownercache.New(cli, etcdtest.Quiet), etcdtest.Quiet)
	t0 := time.Now()
	if err := st.Start(ctx); err != nil {
		b.Fatal(err)
	}
	start := time.Since(t0)
	perHaVip := float64(heapAfterGC()-before) / float64(n)
	probe := benchHaVip(n/2, account, time.Time{})
	if v, err := st.Get(account, probe.ID); err != nil || v.VIP != probe.VIP {
		b.Fatalf("HAVIP %d: %+v, %v", n/2, v, err)
	}
	runtime.AddCleanup(st, func(ch chan struct{}) { close(ch) }, gone)
	return start, perHaVip
}

// BenchmarkStoreLoad starts a store over 1,000, 10,000 and 100,000 HAVIPs of one account (two
// switch-range entries each) and reports, for each size, how long Start takes (the cold load) and
// the heap the started store holds per HAVIP (HeapAlloc after GC, less the heap before Start).
//
//	cd services/havip && go test ./store -run '^$' -bench StoreLoad -benchtime 1x
func BenchmarkStoreLoad(b *testing.B) {
	_, cli := etcdtest.Fresh(b)
	for range b.N {
		ctx := context.Background()
		account := "acct-load" + ids.New("")
		have := 0
		for _, n := range []int{1000, 10000, 100000} {
			if err := writeHaVips(ctx, cli, account, have, n); err != nil {
				b.Fatal(err)
			}
			have = n
			// The heap is measured in the process that also runs etcd: the median of three
			// starts keeps etcd's own ups and downs out.
			var starts []time.Duration
			var heaps []float64
			for range 3 {
				start, perHaVip := startStore(b, cli, account, n)
				starts, heaps = append(starts, start), append(heaps, perHaVip)
			}
			slices.Sort(starts)
			slices.Sort(heaps)
			start, perHaVip := starts[1], heaps[1]
			b.Logf("%7d HAVIPs: start %8.1f ms (%5.2f µs/HAVIP), heap %6.0f B/HAVIP", n, float64(start.Microseconds())/1000, float64(start.Nanoseconds())/1000/float64(n), perHaVip)
			if n == 100000 {
				b.ReportMetric(float64(start.Milliseconds()), "start-100k-ms")
				b.ReportMetric(perHaVip, "heap-B/HAVIP")
			}
		}
	}
}
