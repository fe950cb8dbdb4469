package grpcclient_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/openhavip/havip/platform/grpcclient"
	"github.com/openhavip/havip/platform/metrics/metricstest"
)

// flaky is a server of test.Things whose every method fails with failCode its first failures
// calls, then answers; it counts the calls of each method.
type flaky struct {
	failures int
	failCode codes.Code
	mu       sync.Mutex
	calls    map[string]int
}

func (f *flaky) handle(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	if f.calls[method] <= f.failures {
		return status.Error(f.failCode, "not now")
	}
	return nil
}

func (f *flaky) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// thingMethods are test.Things' methods: a read, a create (whose request may carry a client
// token) and another write.
var thingMethods = []string{"DescribeThings", "CreateThing", "DeleteThing"}

// serveFlaky serves f on 127.0.0.1:0 and returns a connection to it with grpcclient.Options.
func serveFlaky(t *testing.T, f *flaky) *grpc.ClientConn {
	t.Helper()
	desc := grpc.ServiceDesc{ServiceName: "test.Things", HandlerType: (*any)(nil)}
	for _, m := range thingMethods {
		desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: m, Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req wrapperspb.StringValue
			if err := dec(&req); err != nil {
				return nil, err
			}
			return &req, f.handle(m)
		}})
	}
	srv := grpc.NewServer()
	srv.RegisterService(&desc, struct{}{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpcclient.Options(nil)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// tokened is a request whose client token is its value, as CreateHaVipRequest's client_token.
type tokened struct{ *wrapperspb.StringValue }

func (r tokened) GetClientToken() string { return r.GetValue() }

// call calls method of test.Things with req.
func call(ctx context.Context, conn *grpc.ClientConn, method string, req any) error {
	return conn.Invoke(ctx, "/test.Things/"+method, req, &wrapperspb.StringValue{})
}

// TestRetrySafeCallsOnly: against a server that is unavailable twice, a read and a create with
// a client token succeed on their third try; a create without a token and another write (even
// one with a token field set) are sent exactly once and fail. Each retry is counted.
func TestRetrySafeCallsOnly(t *testing.T) {
	addr := metricstest.Start(t)
	counted := func(method string) float64 {
		v, _ := metricstest.Value(metricstest.Families(t, metricstest.Get(t, addr)), "havip_grpc_client_retries_total", map[string]string{"rpc_method": "/test.Things/" + method})
		return v
	}
	f := &flaky{failures: 2, failCode: codes.Unavailable, calls: map[string]int{}}
	conn := serveFlaky(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		method  string
		req     any
		retried bool
	}{
		{"DescribeThings", wrapperspb.String(""), true},
		{"CreateThing", tokened{wrapperspb.String("token-1")}, true},
		{"CreateThing", tokened{wrapperspb.String("")}, false},
		{"CreateThing", wrapperspb.String("no token method"), false},
		{"DeleteThing", wrapperspb.String(""), false},
	} {
		f.mu.Lock()
		f.calls = map[string]int{}
		f.mu.Unlock()
		before := counted(c.method)
		err := call(ctx, conn, c.method, c.req)
		got, retried := f.count(c.method), counted(c.method)-before
		if c.retried {
			if err != nil || got != 3 || retried != 2 {
				t.Errorf("%s %v: err %v after %d tries (%v counted retries), want success on the 3rd (2)", c.method, c.req, err, got, retried)
			}
		} else if status.Code(err) != codes.Unavailable || got != 1 || retried != 0 {
			t.Errorf("%s %v: %v after %d tries (%v counted retries), want Unavailable after exactly 1 (0)", c.method, c.req, err, got, retried)
		}
	}
}

// TestRetryOnlyUnavailable: a read that fails with another code (Aborted, ResourceExhausted,
// DeadlineExceeded) is not sent again.
func TestRetryOnlyUnavailable(t *testing.T) {
	for _, code := range []codes.Code{codes.Aborted, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Internal} {
		f := &flaky{failures: 1, failCode: code, calls: map[string]int{}}
		conn := serveFlaky(t, f)
		err := call(context.Background(), conn, "DescribeThings", wrapperspb.String(""))
		if status.Code(err) != code || f.count("DescribeThings") != 1 {
			t.Errorf("%v: %v after %d tries, want %v after 1", code, err, f.count("DescribeThings"), code)
		}
	}
}

// TestRetryBoundedByContext: a read against a server that is always unavailable gives up with
// Unavailable (not DeadlineExceeded) before its caller's deadline when the next wait would pass
// it, and after RetryAttempts tries without a deadline.
func TestRetryBoundedByContext(t *testing.T) {
	f := &flaky{failures: 1 << 30, failCode: codes.Unavailable, calls: map[string]int{}}
	conn := serveFlaky(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := call(ctx, conn, "DescribeThings", wrapperspb.String(""))
	if took := time.Since(start); status.Code(err) != codes.Unavailable || took > 300*time.Millisecond {
		t.Errorf("with 300 ms: %v after %v", err, took)
	}
	if n := f.count("DescribeThings"); n < 1 || n > grpcclient.RetryAttempts {
		t.Errorf("with 300 ms: %d tries", n)
	}
	f.mu.Lock()
	f.calls = map[string]int{}
	f.mu.Unlock()
	err = call(context.Background(), conn, "DescribeThings", wrapperspb.String(""))
	if status.Code(err) != codes.Unavailable || f.count("DescribeThings") != grpcclient.RetryAttempts {
		t.Errorf("without a deadline: %v after %d tries, want Unavailable after %d", err, f.count("DescribeThings"), grpcclient.RetryAttempts)
	}
}

// TestReadRule: the rule by name (every method of the platform's services is checked against
// it in suite's TestRetryReadRule).
func TestReadRule(t *testing.T) {
	for m, want := range map[string]bool{
		healthpb.Health_Check_FullMethodName:               true,
		healthpb.Health_Watch_FullMethodName:               false,
		"/havip.v1.HaVipService/DescribeHaVips":            true,
		"/arpbroker.v1.ArpBrokerService/ListArpRejections": true,
		"/havip.v1.HaVipService/CreateHaVip":               false,
		"/havip.v1.HaVipService/DeleteHaVip":               false,
		"Describe":                                         true,
		"/x.Y/ModifyDescribeX":                             false,
	} {
		if got := grpcclient.Read(m); got != want {
			t.Errorf("Read(%q) = %v, want %v", m, got, want)
		}
	}
}
