package eip_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/loadtest"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/services/eip"
)

// BenchmarkAllocateAddresses: AllocateAddresses (one EIP per call) at 50 clients against raw
// single-key create-if-absent etcd transactions at 50 clients on the same etcd (target ≥ 0.8×).
// The two take turns in rounds so that a drift of the shared machine weighs on both alike.
func BenchmarkAllocateAddresses(b *testing.B) {
	c := suite(b, eip.Config{Pools: "198.18.0.0/15"}) // RFC 2544's benchmarking range: room for every round
	cli := etcdtest.Client(b, etcdEndpoint)
	for range b.N {
		ctx := build(b, c).ctx
		raw := loadtest.CreateIfAbsent(cli, fmt.Sprintf("/bench/raw/%d/", time.Now().UnixNano()))
		const total, rounds = 10000, 4
		var rawTime, apiTime float64
		for r := range rounds {
			rawTime += total / rounds / loadtest.Throughput(b, 50, total/rounds, func(i int) error { return raw(r*total/rounds + i) })
			apiTime += total / rounds / loadtest.Throughput(b, 50, total/rounds, func(int) error {
				_, err := c.eip.AllocateAddresses(ctx, &eipv1.AllocateAddressesRequest{AddressName: "bench"})
				return err
			})
		}
		b.ReportMetric(total/rawTime, "raw-txn-50clients-ops/s")
		b.ReportMetric(total/apiTime, "allocate-50clients-ops/s")
		b.ReportMetric(rawTime/apiTime, "allocate/raw(target>=0.8)")
	}
}

// BenchmarkNatRuleLatency: from an owner change committed to etcd (the broker's write of the
// HAVIP's owner record) until WatchNatRules delivers the EIP's rule with the new backend, against
// a raw etcd watch notification of a write of the same size, each timed from just before the
// write. The two alternate, 1000 samples each; p99 target ≤ 2× the raw p99.
func BenchmarkNatRuleLatency(b *testing.B) {
	c := suite(b, eip.Config{})
	cli := etcdtest.Client(b, etcdEndpoint)
	for range b.N {
		w := build(b, c)
		etcdtest.Must[*havipv1.HaVipAssociateAddressIpResponse](b)(c.havip.HaVipAssociateAddressIp(w.ctx, &havipv1.HaVipAssociateAddressIpRequest{HavipId: w.hv1.GetHavipId(), AddressIp: w.eip1.GetAddressIp()}))
		ctx, cancel := context.WithCancel(context.Background())
		stream := etcdtest.Must[eipv1.NatRuleService_WatchNatRulesClient](b)(eipv1.NewNatRuleServiceClient(c.conn).WatchNatRules(ctx, &eipv1.WatchNatRulesRequest{}))
		etcdtest.Must[*eipv1.WatchNatRulesResponse](b)(stream.Recv())
		rawKey := fmt.Sprintf("/bench/watch/%d", time.Now().UnixNano())
		rawWatch := cli.Watch(ctx, rawKey)
		ownerKey := records.OwnerKey(w.hv1.GetHavipId())

		const n = 1000
		rawD, natD := make([]time.Duration, n), make([]time.Duration, n)
		for i := range n {
			eni := fmt.Sprintf("eni-bench%03d", i)
			val := fmt.Sprintf(`{"havip_id":%q,"network_interface_id":%q,"instance_id":"ins-bench","host_id":"host-%d"}`, w.hv1.GetHavipId(), eni, i)

			t0 := time.Now()
			if _, err := cli.Put(ctx, rawKey, val); err != nil {
				b.Fatal(err)
			}
			if wr := <-rawWatch; wr.Err() != nil || len(wr.Events) != 1 {
				b.Fatalf("raw watch: %v", wr.Err())
			}
			rawD[i] = time.Since(t0)

			t0 = time.Now()
			resp, err := cli.Txn(ctx).Then(clientv3.OpPut(ownerKey, val)).Commit()
			if err != nil {
				b.Fatal(err)
			}
			for delivered := false; !delivered; {
				msg, err := stream.Recv()
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range msg.GetRules() {
					if r.GetAddressId() == w.eip1.GetAddressId() && r.GetNetworkInterfaceId() == eni {
						if r.GetOwnerRevision() != resp.Header.Revision {
							b.Fatalf("rule %v: owner revision, want %d", r, resp.Header.Revision)
						}
						delivered = true
					}
				}
			}
			natD[i] = time.Since(t0)
		}
		cancel()
		rawP50, rawP99 := loadtest.Quantile(rawD, 0.5), loadtest.Quantile(rawD, 0.99)
		natP50, natP99 := loadtest.Quantile(natD, 0.5), loadtest.Quantile(natD, 0.99)
		b.ReportMetric(float64(rawP50.Microseconds()), "raw-watch-p50-µs")
		b.ReportMetric(float64(rawP99.Microseconds()), "raw-watch-p99-µs")
		b.ReportMetric(float64(natP50.Microseconds()), "natrule-p50-µs")
		b.ReportMetric(float64(natP99.Microseconds()), "natrule-p99-µs")
		b.ReportMetric(float64(natP99)/float64(rawP99), "p99-ratio(target<=2)")
	}
}
