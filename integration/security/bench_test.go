package security_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/loadtest"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

// serveReplica serves ipamd and havipd as one replica on the shared etcd with sec, until the
// benchmark ends, and returns its address.
func serveReplica(b *testing.B, sec service.Security) string {
	b.Helper()
	addr, _ := etcdtest.Replica(b, etcdEndpoint, sec, ipam.Module, service.Must(havip.NewModule(havip.Config{})))
	return addr
}

// BenchmarkDescribeOverMTLS: DescribeHaVips by ID at 50 clients over one reused connection,
// over mTLS against the same over plaintext, two replicas of the same services on one etcd,
// in alternating rounds (target ≥ 0.85×); and the cost of a handshake: a new connection's first
// call against a call on a connection already up, over mTLS and over plaintext.
func BenchmarkDescribeOverMTLS(b *testing.B) {
	secure := serveReplica(b, service.Security{TLS: mtlstest.Source(b, mtlstest.Service)})
	plain := serveReplica(b, service.Security{}) // the development flag's server: no TLS
	operator := mtlstest.Source(b, mtlstest.Operator)
	dial := func(addr string, src *mtls.Source) *grpc.ClientConn {
		conn, err := grpc.NewClient(addr, mtls.DialOption(src))
		if err != nil {
			b.Fatal(err)
		}
		return conn
	}
	secureConn, plainConn := dial(secure, operator), dial(plain, nil)
	b.Cleanup(func() { _ = secureConn.Close(); _ = plainConn.Close() })
	ctx := tenant.Outgoing(context.Background(), "acct-bench-mtls")
	ipamc := ipamv1.NewIpamServiceClient(secureConn)
	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](b)(ipamc.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	subnet := etcdtest.Must[*ipamv1.CreateSubnetResponse](b)(ipamc.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.1.0/24"})).GetSubnet().GetSubnetId()
	var ids []string
	for range 100 {
		ids = append(ids, etcdtest.Must[*havipv1.CreateHaVipResponse](b)(havipv1.NewHaVipServiceClient(secureConn).CreateHaVip(ctx,
			&havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: subnet, HavipName: "h"})).GetHavip().GetHavipId())
	}
	describe := func(conn *grpc.ClientConn) func(i int) error {
		c := havipv1.NewHaVipServiceClient(conn)
		return func(i int) error {
			_, err := c.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{ids[i%len(ids)]}})
			return err
		}
	}
	for range b.N {
		const total, rounds = 10000, 4
		var plainTime, secureTime float64
		for range rounds { // alternating, so that a drift of the shared machine weighs on both
			plainTime += total / loadtest.Throughput(b, 50, total, describe(plainConn))
			secureTime += total / loadtest.Throughput(b, 50, total, describe(secureConn))
		}
		plainRate, secureRate := rounds*total/plainTime, rounds*total/secureTime
		firstCall := func(addr string, src *mtls.Source) func() error {
			return func() error {
				conn := dial(addr, src)
				defer conn.Close()
				return describe(conn)(0)
			}
		}
		reused := loadtest.P50(b, 300, func() error { return describe(secureConn)(0) })
		newSecure := loadtest.P50(b, 300, firstCall(secure, operator))
		newPlain := loadtest.P50(b, 300, firstCall(plain, nil))
		b.ReportMetric(plainRate, "plaintext-50clients-ops/s")
		b.ReportMetric(secureRate, "mtls-50clients-ops/s")
		b.ReportMetric(secureRate/plainRate, "mtls/plaintext(target>=0.85)")
		b.ReportMetric(float64(reused.Microseconds()), "reused-conn-call-p50-µs")
		b.ReportMetric(float64(newPlain.Microseconds()), "new-plaintext-conn-call-p50-µs")
		b.ReportMetric(float64(newSecure.Microseconds()), "new-mtls-conn-call-p50-µs")
		b.ReportMetric(float64((newSecure - newPlain).Microseconds()), "mtls-handshake-cost-µs")
	}
}
