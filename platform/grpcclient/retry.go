package grpcclient

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/openhavip/havip/platform/metrics"
	"github.com/openhavip/havip/platform/retry"
)

// RetryAttempts is how many times Retry sends a safe call at most (the first try included).
const RetryAttempts = 5

// Retry is the unary client interceptor that sends a call again when it failed with
// codes.Unavailable and sending it again is safe (Safe): a read, or a create that carries a
// client token, which the service answers with the same resource however many times it comes.
// It waits b.Wait between tries (capped exponential backoff with full jitter), tries at most
// attempts times, and never waits past ctx's deadline: then, or once ctx ends, the caller gets
// the last failure. Other failures (DeadlineExceeded of the caller's ctx, Aborted,
// ResourceExhausted: the pool is empty, not busy) go back to the caller at once.
//
// A call that never left the client (no connection was ready, or the server refused the
// stream before reading it) is retried by gRPC itself, whatever its method: gRPC's transparent
// retry is on unless a connection is dialled with grpc.WithDisableRetry, which Options never is.
// This interceptor adds the retries only the platform knows to be safe: of calls the server may
// have received.
func Retry(b retry.Backoff, attempts int) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil || !Safe(method, req) {
			return err
		}
		for n := 1; n < attempts && status.Code(err) == codes.Unavailable; n++ {
			if !b.Wait(ctx, n) {
				return err
			}
			retries.Add(ctx, 1, metric.WithAttributes(attribute.String("rpc_method", method)))
			err = invoker(ctx, method, req, reply, cc, opts...)
		}
		return err
	}
}

// Safe reports whether a call may be sent again after the server may have received it: a read
// (Read), or a request that carries a non-empty client token.
func Safe(method string, req any) bool {
	if Read(method) {
		return true
	}
	t, ok := req.(interface{ GetClientToken() string })
	return ok && t.GetClientToken() != ""
}

// Read reports whether the full method name ("/pkg.Service/Method") is a read: the health
// check, or a method whose name begins with Describe or List — the platform's naming rule for
// calls that change nothing (suite's TestRetryReadRule checks every method of every service).
func Read(method string) bool {
	if method == healthpb.Health_Check_FullMethodName {
		return true
	}
	name := method[strings.LastIndexByte(method, '/')+1:]
	return strings.HasPrefix(name, "Describe") || strings.HasPrefix(name, "List")
}

// retries is havip_grpc_client_retries_total{rpc_method}: the calls Retry sent again.
var retries = metrics.Must(metrics.Meter("github.com/openhavip/havip/platform/grpcclient").Int64Counter("havip.grpc.client.retries",
	metric.WithUnit("{retry}"), metric.WithDescription("Calls to a service sent again after it was unavailable (reads and creates with a client token), by gRPC method.")))
