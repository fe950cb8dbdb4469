package ipam_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ipalloc"
	"github.com/openhavip/havip/platform/loadtest"
	"github.com/openhavip/havip/services/ipam/store"
)

// rawTxns is the baseline: single-key create-if-absent transactions straight from an etcd client.
func rawTxns(tb testing.TB, cli *clientv3.Client, clients, total int) float64 {
	prefix := fmt.Sprintf("/bench/raw/%d/%d/", time.Now().UnixNano(), clients)
	return loadtest.Throughput(tb, clients, total, loadtest.CreateIfAbsent(cli, prefix))
}

// BenchmarkAllocateThroughput: automatic allocation through the gRPC API at 50 clients, next to
// raw create-if-absent etcd transactions at 1 and 50 clients on the same etcd (target ≥ 0.8×).
func BenchmarkAllocateThroughput(b *testing.B) {
	c, _ := replica(b)
	cli := etcdtest.Client(b, etcdEndpoint)
	const total = 20000
	for range b.N {
		raw1 := rawTxns(b, cli, 1, 2000)
		raw50 := rawTxns(b, cli, 50, total)
		acct := unique("acct-bench")
		subnet := newSubnet(b, c, acct, "10.0.0.0/16", "10.0.0.0/16")
		ctx := as(acct)
		api50 := loadtest.Throughput(b, 50, total, func(int) error {
			_, err := c.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: subnet})
			return err
		})
		b.ReportMetric(raw1, "raw-txn-1client-ops/s")
		b.ReportMetric(raw50, "raw-txn-50clients-ops/s")
		b.ReportMetric(api50, "allocate-50clients-ops/s")
		b.ReportMetric(api50/raw50, "ratio(target>=0.8)")
	}
}

// fill writes allocation keys straight into etcd for every address of the /16 subnet's usable
// range that want(offset) selects and that is not taken yet, 128 to a transaction.
func fill(tb testing.TB, cli *clientv3.Client, account, subnet string, cidr netip.Prefix, want func(off int) bool) {
	r, _ := ipalloc.CIDRHosts(cidr, 1)
	taken := map[string]bool{}
	resp, err := cli.Get(context.Background(), store.AddressPrefix+subnet+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		tb.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		taken[string(kv.Key)] = true
	}
	var ops []clientv3.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
			tb.Fatal(err)
		}
		ops = ops[:0]
	}
	for off, u := 0, ipalloc.U32(r.First); u <= ipalloc.U32(r.Last); off, u = off+1, u+1 {
		key := store.AddressPrefix + subnet + "/" + ipalloc.Addr(u).String()
		if want(off) && !taken[key] {
			ops = append(ops, clientv3.OpPut(key, `{"account":"`+account+`"}`))
			if len(ops) == 128 {
				flush()
			}
		}
	}
	flush()
}

// BenchmarkAllocateAsSubnetFills: allocation p50 in a 99%-full /16 next to an empty /16 (target
// ≤ 1.5×), and the ResourceInsufficient answer of a full /16 (target ≤ 2× the empty p50).
func BenchmarkAllocateAsSubnetFills(b *testing.B) {
	c, _ := replica(b)
	cli := etcdtest.Client(b, etcdEndpoint)
	acct := unique("acct-fill")
	ctx := as(acct)
	cidr := netip.MustParsePrefix("10.0.0.0/16")
	for range b.N {
		empty := newSubnet(b, c, acct, "10.0.0.0/16", cidr.String())
		full := newSubnet(b, c, acct, "10.0.0.0/16", cidr.String())
		size := 1<<16 - 3
		fill(b, cli, acct, full, cidr, func(off int) bool { return off%100 != 0 }) // 99% full, spread out
		allocate := func(subnet string) func() error {
			return func() error {
				_, err := c.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: subnet})
				return err
			}
		}
		// Wait until the replica sees the fill (a Describe is as fresh as a linearizable read).
		r, err := c.DescribeSubnets(ctx, &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{full}})
		if err != nil {
			b.Fatal(err)
		}
		avail := r.GetSubnetSet()[0].GetAvailableIpAddressCount()
		emptyP50 := loadtest.P50(b, 300, allocate(empty))
		fullP50 := loadtest.P50(b, 300, allocate(full))
		fill(b, cli, acct, full, cidr, func(int) bool { return true })
		if _, err := c.DescribeSubnets(ctx, &ipamv1.DescribeSubnetsRequest{SubnetIds: []string{full}}); err != nil {
			b.Fatal(err)
		}
		exhaustedP50 := loadtest.P50(b, 300, func() error {
			if err := allocate(full)(); apierr.Reason(err) != apierr.ReasonResourceInsufficient {
				return fmt.Errorf("allocation in a full subnet: %w", err)
			}
			return nil
		})
		maxVal := 0
		resp, err := cli.Get(context.Background(), store.Root, clientv3.WithPrefix())
		if err != nil {
			b.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			maxVal = max(maxVal, len(kv.Value))
		}
		b.Logf("99%%-full /16 had %d of %d addresses free", avail, size)
		b.ReportMetric(float64(emptyP50.Microseconds()), "empty-p50-µs")
		b.ReportMetric(float64(fullP50.Microseconds()), "99%full-p50-µs")
		b.ReportMetric(float64(exhaustedP50.Microseconds()), "exhausted-p50-µs")
		b.ReportMetric(float64(fullP50)/float64(emptyP50), "full/empty(target<=1.5)")
		b.ReportMetric(float64(exhaustedP50)/float64(emptyP50), "exhausted/empty(target<=2)")
		b.ReportMetric(float64(maxVal), "max-etcd-value-bytes")
		b.ReportMetric(float64(len(resp.Kvs)), "ipam-keys")
	}
}
