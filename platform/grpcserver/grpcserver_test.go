package grpcserver_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/authz"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/grpcserver"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/platform/tracing"
)

// testService blocks UnaryCall until release is closed, and panics in EmptyCall.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	started chan struct{}
	release chan struct{}
	traceID string
}

func (s *testService) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	s.traceID = trace.SpanContextFromContext(ctx).TraceID().String()
	close(s.started)
	<-s.release
	return &testgrpc.SimpleResponse{}, nil
}

func (s *testService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	panic("boom")
}

// TestServeDrainsOnShutdown: health and reflection are served; an account is required; a panic
// is an Internal error; on shutdown health turns NOT_SERVING and an in-flight call finishes.
func TestServeDrainsOnShutdown(t *testing.T) {
	if _, err := tracing.Setup(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.New(etcdtest.Quiet, grpcserver.Options{
		Creds: mtls.ServerCredentials(mtlstest.Source(t, mtlstest.Service), etcdtest.Quiet),
		Authz: authz.New(nil, mtlstest.Service, false).With(authz.Rule{Method: "/grpc.testing.TestService/", Access: authz.Tenant}),
	})
	svc := &testService{started: make(chan struct{}), release: make(chan struct{})}
	testgrpc.RegisterTestServiceServer(srv.GRPC, svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), mtls.DialOption(mtlstest.Source(t, mtlstest.Operator)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// Reflection lists the services, so grpcurl and ghz need no .proto files.
	rctx, rcancel := context.WithCancel(context.Background())
	rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	rcancel()
	names := map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		names[s.GetName()] = true
	}
	if !names["grpc.testing.TestService"] || !names["grpc.health.v1.Health"] {
		t.Errorf("reflection lists %v", names)
	}

	client := testgrpc.NewTestServiceClient(conn)
	if _, err := client.EmptyCall(context.Background(), &testgrpc.Empty{}); status.Code(err) != codes.Unauthenticated || apierr.Reason(err) != apierr.ReasonAuthFailure {
		t.Errorf("call without account: %v", err)
	}
	actx := tenant.Outgoing(context.Background(), "acct-1")
	if _, err := client.EmptyCall(actx, &testgrpc.Empty{}); status.Code(err) != codes.Internal {
		t.Errorf("panicking handler: %v", err)
	}

	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	watch, err := healthpb.NewHealthClient(conn).Watch(wctx, &healthpb.HealthCheckRequest{Service: "grpc.testing.TestService"})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := watch.Recv(); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before shutdown: %v %v", h, err)
	}
	inflight := make(chan error, 1)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	tctx := metadata.AppendToOutgoingContext(actx, "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	go func() {
		_, err := client.UnaryCall(tctx, &testgrpc.SimpleRequest{})
		inflight <- err
	}()
	<-svc.started
	cancel() // what SIGTERM does
	if h, err := watch.Recv(); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health after shutdown began: %v %v", h, err)
	}
	wcancel() // a balancer that saw NOT_SERVING goes away; the drain waits for open streams
	close(svc.release)
	if err := <-inflight; err != nil {
		t.Errorf("in-flight call was cut: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if svc.traceID != traceID {
		t.Errorf("W3C trace context not propagated: handler saw trace %q", svc.traceID)
	}
}

// TestExpiredCertificateLosesItsConnection: a connection made with a certificate that then
// expires does not outlive it: the server has the client connect again within its maximum
// connection age, and the new handshake is refused.
func TestExpiredCertificateLosesItsConnection(t *testing.T) {
	srv := grpcserver.New(etcdtest.Quiet, grpcserver.Options{
		Creds:            mtls.ServerCredentials(mtlstest.Source(t, mtlstest.Service), etcdtest.Quiet),
		Authz:            authz.New(nil, mtlstest.Service, false),
		MaxConnectionAge: 500 * time.Millisecond,
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(ctx, lis) }()
	// A certificate valid for two more seconds.
	leaf, err := mtlstest.CA(t).IssueWindow(mtlstest.Agent("h1"), nil, time.Now().Add(-time.Minute), time.Now().Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, _, err := leaf.Write(dir, "leaf"); err != nil {
		t.Fatal(err)
	}
	files := mtls.InDir(dir, "leaf")
	files.CA = mtlstest.Files(t, mtlstest.Operator).CA
	src, err := mtls.Load(files, etcdtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(lis.Addr().String(), mtls.DialOption(src))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	if _, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("while the certificate is valid: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
		_, err := health.Check(cctx, &healthpb.HealthCheckRequest{})
		ccancel()
		if err != nil {
			break // refused: the connection was remade and the expired certificate refused
		}
		if time.Now().After(deadline) {
			t.Fatal("the connection still serves 8s after its certificate expired")
		}
		time.Sleep(100 * time.Millisecond) // waiting for the expiry and the connection's age
	}
}
