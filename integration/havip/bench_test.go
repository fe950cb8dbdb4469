package havip_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/loadtest"
)

// BenchmarkHaVip measures, in one run on one etcd:
//   - CreateHaVip with an automatic VIP at 50 clients against raw single-key create-if-absent
//     transactions at 50 clients (target ≥ 0.6×);
//   - DescribeHaVips by ID at 50 clients against raw linearizable single-key reads at 50 clients
//     (target ≥ 1.0×), each Describe as fresh as a linearizable read;
//   - DescribeHaVips with a filter over 10,000 HAVIPs, page of 100, p50 against the p50 of a
//     Describe by one ID (target ≤ 5×).
func BenchmarkHaVip(b *testing.B) {
	c := replica(b)
	cli := etcdtest.Client(b, etcdEndpoint)
	for range b.N {
		account := unique("acct-bench") // the filter runs over this run's 10,000
		ctx := as(account)
		n := buildNet(b, c, account, "10.0.0.0/18")
		prefix := fmt.Sprintf("/bench/raw/%d/", time.Now().UnixNano())
		raw := loadtest.CreateIfAbsent(cli, prefix)
		const total = 10000
		// Raw transactions and creates take turns in rounds, so that a drift of the shared
		// machine's speed weighs on both alike.
		var mu sync.Mutex
		var created []string
		var rawTime, createTime float64
		const rounds = 4
		for r := range rounds {
			rawTime += total / rounds / loadtest.Throughput(b, 50, total/rounds, func(i int) error { return raw(r*total/rounds + i) })
			createTime += total / rounds / loadtest.Throughput(b, 50, total/rounds, func(int) error {
				r, err := c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: n.vpc, SubnetId: n.subnet, HavipName: "bench"})
				if err != nil {
					return err
				}
				mu.Lock()
				created = append(created, r.GetHavip().GetHavipId())
				mu.Unlock()
				return nil
			})
		}
		rawTxn, create := total/rawTime, total/createTime
		var readTime, describeTime float64
		for range rounds {
			readTime += total / loadtest.Throughput(b, 50, total, func(i int) error {
				_, err := cli.Get(context.Background(), fmt.Sprintf("%s%d", prefix, i))
				return err
			})
			describeTime += total / loadtest.Throughput(b, 50, total, func(i int) error {
				_, err := c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{created[i%len(created)]}})
				return err
			})
		}
		rawRead, describe := rounds*total/readTime, rounds*total/describeTime
		byID := loadtest.P50(b, 300, func() error {
			_, err := c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{created[len(created)/2]}})
			return err
		})
		filtered := loadtest.P50(b, 300, func() error {
			r, err := c.havip.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{Limit: 100, Offset: 5000,
				Filters: []*havipv1.Filter{{Name: "subnet-id", Values: []string{n.subnet}}, {Name: "check-associate", Values: []string{"true"}}}})
			if err == nil && (r.GetTotalCount() < total || len(r.GetHavipSet()) != 100) {
				err = fmt.Errorf("filter matched %d, page %d", r.GetTotalCount(), len(r.GetHavipSet()))
			}
			return err
		})
		b.ReportMetric(rawTxn, "raw-txn-50clients-ops/s")
		b.ReportMetric(create, "create-50clients-ops/s")
		b.ReportMetric(create/rawTxn, "create/raw(target>=0.6)")
		b.ReportMetric(rawRead, "raw-read-50clients-ops/s")
		b.ReportMetric(describe, "describe-50clients-ops/s")
		b.ReportMetric(describe/rawRead, "describe/raw(target>=1.0)")
		b.ReportMetric(float64(byID.Microseconds()), "by-id-p50-µs")
		b.ReportMetric(float64(filtered.Microseconds()), "filter-10k-p50-µs")
		b.ReportMetric(float64(filtered)/float64(byID), "filter/by-id(target<=5)")
	}
}
