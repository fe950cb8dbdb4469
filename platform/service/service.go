// Package service runs service binaries: flags and env, logging, tracing, etcd, one gRPC server, graceful stop.
package service

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/etcdx"
	"github.com/openhavip/havip/platform/grpcserver"
	"github.com/openhavip/havip/platform/inproc"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/platform/tracing"
)

// Deps are what a module gets to build its service.
type Deps struct {
	Etcd *clientv3.Client
	Log  *slog.Logger
	// GRPCAddr is where the process serves gRPC, for modules that call sibling services.
	GRPCAddr string
	// Local calls the services of this process in process (platform/inproc), with no network
	// hop: for a module whose sibling service runs beside it.
	Local grpc.ClientConnInterface
}

// Module builds one gRPC service: it starts what it needs (until ctx ends) and returns the
// function that registers it on a server.
type Module struct {
	Name  string
	Start func(ctx context.Context, deps Deps) (func(grpc.ServiceRegistrar), error)
}

// Serve starts every module and serves them all on lis until ctx ends, then stops gracefully.
func Serve(ctx context.Context, log *slog.Logger, lis net.Listener, cli *clientv3.Client, modules ...Module) error {
	return ServeLocal(ctx, log, lis, cli, nil, modules...)
}

// ServeLocal is Serve that also registers the services on local (a fresh channel when nil),
// for callers in the same process — the modules (Deps.Local) and, say, a gateway: it runs them
// through the server's unary interceptors.
func ServeLocal(ctx context.Context, log *slog.Logger, lis net.Listener, cli *clientv3.Client, local *inproc.Channel, modules ...Module) error {
	srv := grpcserver.New(log)
	if local == nil {
		local = inproc.New()
	}
	local.SetInterceptor(srv.UnaryInterceptor())
	reg := tee{srv.GRPC, local}
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, m := range modules {
		register, err := m.Start(mctx, Deps{Etcd: cli, Log: log.With("module", m.Name), GRPCAddr: lis.Addr().String(), Local: local})
		if err != nil {
			return fmt.Errorf("start %s: %w", m.Name, err)
		}
		register(reg)
	}
	local.Ready()
	return srv.Serve(ctx, lis)
}

// tee registers a service on two registrars.
type tee [2]grpc.ServiceRegistrar

func (t tee) RegisterService(desc *grpc.ServiceDesc, impl any) {
	t[0].RegisterService(desc, impl)
	t[1].RegisterService(desc, impl)
}

// Main is the whole main function of a single-service binary: it reads -grpc-addr
// (HAVIP_GRPC_ADDR), -etcd (HAVIP_ETCD_ENDPOINTS) and -log-level (HAVIP_LOG_LEVEL), and serves
// until SIGINT or SIGTERM.
func Main(name string, modules ...Module) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	addr := config.String(fs, "grpc-addr", "HAVIP_GRPC_ADDR", "127.0.0.1:50051", "address to serve gRPC on")
	endpoints := config.String(fs, "etcd", "HAVIP_ETCD_ENDPOINTS", "http://127.0.0.1:2379", "comma-separated etcd endpoints")
	level := config.String(fs, "log-level", "HAVIP_LOG_LEVEL", "info", "debug, info, warn or error")
	_ = fs.Parse(os.Args[1:])
	log := logging.New(os.Stderr, *level, name)
	if err := run(ctx, log, name, *addr, config.List(*endpoints), modules); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, name, addr string, endpoints []string, modules []Module) error {
	shutdown, err := tracing.Setup(ctx, name)
	if err != nil {
		return err
	}
	defer func() { _ = shutdown(context.Background()) }()
	cli, err := etcdx.Connect(ctx, endpoints)
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return Serve(ctx, log, lis, cli, modules...)
}
