package tracing_test

import (
	"context"
	"fmt"
	"net"
	"os"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/openhavip/havip/platform/tracing"
)

// traced answers a call with the trace ID its context carries.
type traced struct {
	testgrpc.UnimplementedTestServiceServer
}

func (traced) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	id := trace.SpanContextFromContext(ctx).TraceID().String()
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: []byte(id)}}, nil
}

// The default, with no OTEL_EXPORTER_OTLP_ENDPOINT: nothing is exported, yet a caller's W3C
// trace context still reaches the handler of the service it calls, through ServerOptions and
// ClientOptions.
func ExampleSetup() {
	os.Unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT") // this example shows the default
	ctx := context.Background()
	shutdown, err := tracing.Setup(ctx, "exampled")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = shutdown(ctx) }() // flushes spans when exporting; here a no-op
	fmt.Println("exporting:", tracing.Enabled())

	// A server and a client instrumented the same way.
	srv := grpc.NewServer(tracing.ServerOptions()...)
	testgrpc.RegisterTestServiceServer(srv, traced{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(),
		append(tracing.ClientOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	// A context in a trace, as a request that came in with a traceparent header has.
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	tctx := trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))
	resp, err := testgrpc.NewTestServiceClient(conn).UnaryCall(tctx, &testgrpc.SimpleRequest{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("the handler saw trace", string(resp.GetPayload().GetBody()))
	// Output:
	// exporting: false
	// the handler saw trace 4bf92f3577b34da6a3ce929d0e0e4736
}
