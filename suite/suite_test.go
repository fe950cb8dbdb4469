package suite_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/etcdx"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/logging/logtest"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/pki"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/suite"
)

// run starts the suite with cfg, every address on 127.0.0.1:0, until stop is called or the
// test ends, and connects to its gRPC address.
func run(tb testing.TB, cfg suite.Config, out io.Writer) (suite.Ready, *grpc.ClientConn, func()) {
	tb.Helper()
	cfg.GRPCAddr, cfg.EtcdAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan suite.Ready, 1)
	done := make(chan error, 1)
	go func() { done <- suite.Run(ctx, cfg, etcdtest.Quiet, out, func(r suite.Ready) { ready <- r }) }()
	var r suite.Ready
	select {
	case r = <-ready:
	case err := <-done:
		cancel()
		tb.Fatalf("suite did not start: %v", err)
	}
	// As grpcurl would, with the operator certificate the suite made.
	op, err := mtls.Load(mtls.InDir(r.CertsDir, "operator"), etcdtest.Quiet)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	conn, err := grpc.NewClient(r.GRPCAddr, mtls.DialOption(op))
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = conn.Close()
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("suite stopped with %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return r, conn, stop
}

// sourceAs issues a certificate for id from the suite's CA (in certsDir) and returns it.
func sourceAs(tb testing.TB, certsDir string, id identity.ID) *mtls.Source {
	tb.Helper()
	ca, err := pki.LoadCA(certsDir)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := ca.Issue(id, nil, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	if _, _, err := leaf.Write(dir, "leaf"); err != nil {
		tb.Fatal(err)
	}
	f := mtls.InDir(dir, "leaf")
	f.CA = filepath.Join(certsDir, pki.CACert)
	src, err := mtls.Load(f, etcdtest.Quiet)
	if err != nil {
		tb.Fatal(err)
	}
	return src
}

// start runs the suite on dir until the returned stop is called.
func start(t *testing.T, dir string) (ipamv1.IpamServiceClient, *grpc.ClientConn, *logtest.Buffer, func()) {
	t.Helper()
	out := &logtest.Buffer{}
	_, conn, stop := run(t, suite.Config{DataDir: dir}, out)
	return ipamv1.NewIpamServiceClient(conn), conn, out, stop
}

// TestCommittedSurvivesRestart: the suite keeps its data in its directory: a committed
// allocation is there after a restart.
func TestCommittedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := tenant.Outgoing(context.Background(), "acct-restart")
	c, conn, out, stop := start(t, dir)
	if !strings.Contains(out.String(), "gRPC (mTLS) on 127.0.0.1:") || !strings.Contains(out.String(), "service ipam") {
		t.Errorf("the suite does not say where it listens: %q", out.String())
	}
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "ipam.v1.IpamService"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	v, err := c.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := c.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: v.GetVpc().GetVpcId(), SubnetName: "s", CidrBlock: "10.0.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	subnet := sn.GetSubnet().GetSubnetId()
	resv, err := c.AllocatePrivateIpAddress(ctx, &ipamv1.AllocatePrivateIpAddressRequest{SubnetId: subnet, ReservationTtlSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	a := resv.GetAddress()
	if _, err := c.CommitPrivateIpAddress(ctx, &ipamv1.CommitPrivateIpAddressRequest{SubnetId: subnet, IpAddress: a.GetIpAddress(), ReservationToken: a.GetReservationToken(), Owner: "kept"}); err != nil {
		t.Fatal(err)
	}
	stop()

	c, _, _, _ = start(t, dir)
	list, err := c.DescribePrivateIpAddresses(ctx, &ipamv1.DescribePrivateIpAddressesRequest{SubnetId: subnet})
	if err != nil {
		t.Fatal(err)
	}
	if list.GetTotalCount() != 1 || list.GetAddressSet()[0].GetIpAddress() != a.GetIpAddress() || list.GetAddressSet()[0].GetOwner() != "kept" || list.GetAddressSet()[0].GetReserved() {
		t.Errorf("after restart: %v", list)
	}
}

// TestEtcdTakesOnlyTheSuite: the suite's embedded etcd is a hop like the others: TLS, and only
// the suite's own certificate gets in; a client without a certificate, or with the operator's,
// reads nothing.
func TestEtcdTakesOnlyTheSuite(t *testing.T) {
	r, _, _ := run(t, suite.Config{DataDir: t.TempDir(), UnsafeNoFsync: true}, io.Discard)
	if !strings.HasPrefix(r.EtcdEndpoint, "https://") {
		t.Fatalf("etcd serves %s", r.EtcdEndpoint)
	}
	within := func(d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return ctx
	}
	if _, err := etcdx.Connect(within(time.Second), []string{strings.Replace(r.EtcdEndpoint, "https://", "http://", 1)}); err == nil {
		t.Error("a plaintext client reached etcd")
	}
	op, err := mtls.Load(mtls.InDir(r.CertsDir, "operator"), etcdtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := etcdx.ConnectTLS(within(time.Second), []string{r.EtcdEndpoint}, op.ClientConfig()); err == nil {
		t.Error("the operator's certificate reached etcd")
	}
	self, err := mtls.Load(mtls.InDir(r.CertsDir, suite.SuiteIdentity.Name), etcdtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := etcdx.ConnectTLS(within(10*time.Second), []string{r.EtcdEndpoint}, self.ClientConfig())
	if err != nil {
		t.Fatalf("the suite's certificate: %v", err)
	}
	_ = cli.Close()
}
