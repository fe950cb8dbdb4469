// Package tracing sets up OpenTelemetry: W3C propagation always, OTLP export when configured.
package tracing

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/openhavip/havip/platform/metrics"
)

// Setup installs the W3C trace-context propagator and, when OTEL_EXPORTER_OTLP_ENDPOINT is
// set, a tracer provider exporting spans over OTLP/gRPC. The returned function flushes and
// stops the exporter; it is a no-op when tracing is off.
func Setup(ctx context.Context, service string) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if !Enabled() {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service)))
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// EnvHelp describes, for a program's -h, the environment variables tracing reads: they are
// OpenTelemetry's standard ones, not flags.
const EnvHelp = `Tracing reads OpenTelemetry's standard variables: when OTEL_EXPORTER_OTLP_ENDPOINT is set,
spans are exported there over OTLP/gRPC (with the other OTEL_EXPORTER_OTLP_* variables);
unset (the default), nothing is exported and only the W3C trace context is passed on.`

// Enabled reports whether spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT is set).
func Enabled() bool { return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" }

// instrumented reports whether gRPC calls go through otelgrpc: for spans, or for its metrics
// (the global meter provider, installed by metrics.Start).
func instrumented() bool { return Enabled() || metrics.Enabled() }

// ServerOptions instrument a gRPC server: with export or metrics on (platform/metrics), otelgrpc
// records a span per call and its duration by method and code (rpc_server_call_duration_seconds);
// with both off, only the caller's W3C trace context is carried into the handler's context, so
// it still reaches the services this one calls, without the cost of spans nobody collects.
func ServerOptions() []grpc.ServerOption {
	if instrumented() {
		return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler())}
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			return handler(extract(ctx), req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			return handler(srv, &ctxStream{ServerStream: ss, ctx: extract(ss.Context())})
		}),
	}
}

// ClientOptions instrument a gRPC client the same way: spans and call durations
// (rpc_client_call_duration_seconds) when export or metrics are on; otherwise the trace context
// of ctx is passed on.
func ClientOptions() []grpc.DialOption {
	if instrumented() {
		return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler())}
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(inject(ctx), method, req, reply, cc, opts...)
	}), grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(inject(ctx), desc, cc, method, opts...)
	})}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

func extract(ctx context.Context) context.Context {
	if len(metadata.ValueFromIncomingContext(ctx, "traceparent")) == 0 {
		return ctx // the common case, without copying the metadata
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return otel.GetTextMapPropagator().Extract(ctx, metadataCarrier(md))
}

func inject(ctx context.Context) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	md := metadata.MD{}
	otel.GetTextMapPropagator().Inject(ctx, metadataCarrier(md))
	for k, vs := range md {
		for _, v := range vs {
			ctx = metadata.AppendToOutgoingContext(ctx, k, v)
		}
	}
	return ctx
}

// metadataCarrier lets the propagator read and write gRPC metadata.
type metadataCarrier metadata.MD

func (c metadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c metadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
