package suite_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/loadtest"
	"github.com/openhavip/havip/platform/tenant"
)

// BenchmarkGatewayDescribe: GET /v1/havips/{id} through the suite's gateway (API key, JSON,
// services called in process) at 50 clients against the same DescribeHaVips by ID over gRPC at
// 50 clients, on one suite (target ≥ 0.5×); and, for information, through a gateway that calls
// the suite over gRPC as a standalone gatewayd does. They take turns in rounds.
func BenchmarkGatewayDescribe(b *testing.B) {
	s := startStack(b, false)
	ctx := tenant.Outgoing(context.Background(), "acct-http-a")
	ipam, hv := ipamv1.NewIpamServiceClient(s.grpc), havipv1.NewHaVipServiceClient(s.grpc)
	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](b)(ipam.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	subnet := etcdtest.Must[*ipamv1.CreateSubnetResponse](b)(ipam.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.0.0/24"})).GetSubnet().GetSubnetId()
	var ids []string
	for range 100 {
		ids = append(ids, etcdtest.Must[*havipv1.CreateHaVipResponse](b)(hv.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: subnet, HavipName: "h"})).GetHavip().GetHavipId())
	}
	get := func(base string) func(i int) error {
		return func(i int) error {
			req, err := http.NewRequest("GET", base+"/v1/havips/"+ids[i%len(ids)], nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+s.keyA)
			resp, err := s.client.Do(req)
			if err != nil {
				return err
			}
			defer func() { _ = resp.Body.Close() }()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET: %s", resp.Status)
			}
			return nil
		}
	}
	describe := func(i int) error {
		_, err := hv.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{ids[i%len(ids)]}})
		return err
	}
	for range b.N {
		const total, rounds = 40000, 8
		var grpcTime, httpTime, remoteTime float64
		for range rounds {
			grpcTime += total / rounds / loadtest.Throughput(b, 50, total/rounds, describe)
			httpTime += total / rounds / loadtest.Throughput(b, 50, total/rounds, get(s.local))
			remoteTime += total / rounds / loadtest.Throughput(b, 50, total/rounds, get(s.overGRPC))
		}
		b.ReportMetric(total/grpcTime, "grpc-describe-50clients-ops/s")
		b.ReportMetric(total/httpTime, "http-get-50clients-ops/s")
		b.ReportMetric(grpcTime/httpTime, "http/grpc(target>=0.5)")
		b.ReportMetric(grpcTime/remoteTime, "standalone-gateway-http/grpc")
	}
}
