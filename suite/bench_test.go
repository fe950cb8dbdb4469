package suite_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/loadtest"
	"github.com/openhavip/havip/platform/tenant"
)

// BenchmarkGatewayDescribe: GET /v1/havips/{id} through the suite's gateway (API key, JSON,
// services called in process) at 50 clients against the same DescribeHaVips by ID over gRPC at
// 50 clients (grpc-go), on one suite (target ≥ 0.5×). The HTTP load comes from a lean keep-alive
// client, as wrk's is: Go's net/http client spends a quarter of the HTTP path's CPU on these
// two cores, which is the load generator's cost, not the gateway's — its figure is reported
// too, as is that of a gateway calling the suite over gRPC as a standalone gatewayd does. The
// phases take turns in rounds.
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
	// A lean load generator, as wrk is: 50 keep-alive connections, each request written and its
	// answer read on the caller's goroutine (net/http's client hands each request between three).
	lean := func(base string) func(i int) error {
		conns := make(chan *leanConn, 50)
		for range 50 {
			c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = c.Close() })
			conns <- &leanConn{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
		}
		return func(i int) error {
			c := <-conns
			defer func() { conns <- c }()
			fmt.Fprintf(c.w, "GET /v1/havips/%s HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\n\r\n", ids[i%len(ids)], s.keyA)
			if err := c.w.Flush(); err != nil {
				return err
			}
			resp, err := http.ReadResponse(c.r, nil)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET: %s", resp.Status)
			}
			return err
		}
	}
	leanLocal, leanStandalone := lean(s.local), lean(s.overGRPC)
	describe := func(i int) error {
		_, err := hv.DescribeHaVips(ctx, &havipv1.DescribeHaVipsRequest{HavipIds: []string{ids[i%len(ids)]}})
		return err
	}
	for range b.N {
		const total, rounds = 40000, 8
		var grpcTime, httpTime, leanTime, remoteTime float64
		for range rounds {
			grpcTime += total / rounds / loadtest.Throughput(b, 50, total/rounds, describe)
			httpTime += total / rounds / loadtest.Throughput(b, 50, total/rounds, get(s.local))
			leanTime += total / rounds / loadtest.Throughput(b, 50, total/rounds, leanLocal)
			remoteTime += total / rounds / loadtest.Throughput(b, 50, total/rounds, leanStandalone)
		}
		b.ReportMetric(total/grpcTime, "grpc-describe-50clients-ops/s")
		b.ReportMetric(total/leanTime, "http-get-50clients-ops/s")
		b.ReportMetric(grpcTime/leanTime, "http/grpc(target>=0.5)")
		b.ReportMetric(grpcTime/httpTime, "with-net/http-client-http/grpc")
		b.ReportMetric(grpcTime/remoteTime, "standalone-gateway-http/grpc")
	}
}

// leanConn is one keep-alive connection of the lean HTTP load generator.
type leanConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}
