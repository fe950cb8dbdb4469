package service_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/openhavip/havip/platform/authz"
	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tenant"
)

// greeter answers with the greeting etcd holds for the caller's account.
type greeter struct {
	testgrpc.UnimplementedTestServiceServer
	deps service.Deps
}

func (g greeter) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	account, err := tenant.Caller(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := g.deps.Etcd.Get(ctx, "/example/greeting/"+account)
	if err != nil {
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	body := "no greeting"
	if len(resp.Kvs) > 0 {
		body = string(resp.Kvs[0].Value)
	}
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: []byte(body)}}, nil
}

// A module starts what its service needs and returns how to register the service; Serve runs
// modules on one gRPC server until the context ends. (A binary's main is service.Main, which
// does this with its settings and stops on SIGTERM.)
func ExampleServe() {
	cli, stop, err := etcdtest.StartClient()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()
	if _, err := cli.Put(ctx, "/example/greeting/acct-1", "hello, acct-1"); err != nil {
		fmt.Println(err)
		return
	}

	greeterModule := service.Module{
		Name: "greeter",
		Start: func(ctx context.Context, deps service.Deps) (func(grpc.ServiceRegistrar), error) {
			// Start caches, workers… here; they run until ctx ends.
			return func(r grpc.ServiceRegistrar) { testgrpc.RegisterTestServiceServer(r, greeter{deps: deps}) }, nil
		},
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	sctx, shutdown := context.WithCancel(ctx)
	defer shutdown()
	done := make(chan error, 1)
	// Plaintext, for the example (a binary loads its certificate from -ca, -cert and -key); the
	// rule lets the example's service be called with an account, as the platform's tenant
	// services are.
	sec := service.Security{Rules: []authz.Rule{{Method: "/grpc.testing.TestService/", Access: authz.Tenant}}}
	go func() { done <- service.Serve(sctx, slog.New(slog.DiscardHandler), lis, cli, sec, greeterModule) }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	resp, err := testgrpc.NewTestServiceClient(conn).UnaryCall(tenant.Outgoing(ctx, "acct-1"), &testgrpc.SimpleRequest{})
	if err != nil {
		fmt.Println(err)
	} else {
		fmt.Println(string(resp.GetPayload().GetBody()))
	}
	shutdown()
	fmt.Println("stopped:", <-done)
	// Output:
	// hello, acct-1
	// stopped: <nil>
}

// The settings every service binary has, from flags or their environment variables (here a
// fixed environment instead of the process's), checked before the service starts.
func ExampleFlags() {
	var cfg service.Config
	fs := service.Flags("exampled", "exampled serves examples.", &cfg)
	environment := map[string]string{"HAVIP_ETCD_ENDPOINTS": "https://etcd-1:2379,https://etcd-2:2379"}
	lookup := func(k string) (string, bool) { v, ok := environment[k]; return v, ok }
	if err := config.Parse(fs, []string{"-grpc-addr", "127.0.0.1:0"}, lookup); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.GRPCAddr, cfg.Etcd, cfg.Log.Level, cfg.Validate())

	// Every setting, as -h lists it: flag, variable, default.
	fs.VisitAll(func(f *flag.Flag) { fmt.Printf("-%s (%s), default %q\n", f.Name, config.Env(f), f.DefValue) })
	// Output:
	// 127.0.0.1:0 [https://etcd-1:2379 https://etcd-2:2379] info <nil>
	// -ca (HAVIP_TLS_CA), default "certs/ca.crt"
	// -cert (HAVIP_TLS_CERT), default "certs/exampled.crt"
	// -etcd (HAVIP_ETCD_ENDPOINTS), default "https://127.0.0.1:2379"
	// -grpc-addr (HAVIP_GRPC_ADDR), default "127.0.0.1:50051"
	// -insecure-etcd (HAVIP_INSECURE_ETCD), default "false"
	// -insecure-plaintext (HAVIP_INSECURE_PLAINTEXT), default "false"
	// -key (HAVIP_TLS_KEY), default "certs/exampled.key"
	// -keys (HAVIP_API_KEYS_FILE), default ""
	// -log-level (HAVIP_LOG_LEVEL), default "info"
	// -metrics-addr (HAVIP_METRICS_ADDR), default "127.0.0.1:9464"
	// -pprof (HAVIP_PPROF), default "false"
}
