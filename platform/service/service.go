// Package service runs service binaries: settings, logging, tracing, etcd, one gRPC server, graceful stop.
package service

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
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

// Config is what every service binary reads besides its modules' own settings.
type Config struct {
	// GRPCAddr is where the process serves gRPC (-grpc-addr, HAVIP_GRPC_ADDR; empty means
	// DefaultGRPCAddr).
	GRPCAddr string
	// Etcd lists etcd's endpoints (-etcd, HAVIP_ETCD_ENDPOINTS, comma-separated; empty means
	// DefaultEtcd).
	Etcd []string
	// Log is the logging setting (-log-level, HAVIP_LOG_LEVEL).
	Log logging.Config
}

// Defaults of Config.
const (
	DefaultGRPCAddr = "127.0.0.1:50051"
	DefaultEtcd     = "http://127.0.0.1:2379"
)

var (
	grpcAddrSetting = config.Setting{Flag: "grpc-addr", Env: "HAVIP_GRPC_ADDR"}
	etcdSetting     = config.Setting{Flag: "etcd", Env: "HAVIP_ETCD_ENDPOINTS"}
)

// withDefaults fills the empty settings.
func (c Config) withDefaults() Config {
	if c.GRPCAddr == "" {
		c.GRPCAddr = DefaultGRPCAddr
	}
	if len(c.Etcd) == 0 {
		c.Etcd = []string{DefaultEtcd}
	}
	return c
}

// RegisterFlags registers the common settings on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	*c = c.withDefaults()
	config.String(fs, &c.GRPCAddr, grpcAddrSetting, "address to serve gRPC on, host:port (port 0: any free port)")
	config.List(fs, &c.Etcd, etcdSetting, "comma-separated etcd endpoints")
	c.Log.RegisterFlags(fs)
}

// Validate reports the first setting that is not valid.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, _, err := net.SplitHostPort(c.GRPCAddr); err != nil {
		return grpcAddrSetting.Errorf(c.GRPCAddr, "want host:port")
	}
	for _, e := range c.Etcd {
		if !endpoint(e) {
			return etcdSetting.Errorf(strings.Join(c.Etcd, ","), "%q is not an endpoint: want http://host:port, https://host:port or host:port", e)
		}
	}
	return c.Log.Validate()
}

// endpoint reports whether e is an etcd endpoint: a URL with a host, or host:port.
func endpoint(e string) bool {
	if strings.Contains(e, "://") {
		u, err := url.Parse(e)
		return err == nil && u.Host != ""
	}
	_, _, err := net.SplitHostPort(e)
	return err == nil
}

// Settings are a module's own settings: flags, and a check once they are parsed.
type Settings interface {
	RegisterFlags(fs *flag.FlagSet)
	Validate() error
}

// Flags returns the flag set of a service binary: the common settings into common, then each
// of settings. Its -h lists them all, with their variables and defaults.
func Flags(name, summary string, common *Config, settings ...Settings) *flag.FlagSet {
	fs := config.NewFlagSet(name, summary, tracing.EnvHelp)
	common.RegisterFlags(fs)
	for _, s := range settings {
		s.RegisterFlags(fs)
	}
	return fs
}

// Must returns m, and panics when err is not nil: for a module whose configuration is known to
// be valid, such as one built in a test.
func Must(m Module, err error) Module {
	if err != nil {
		panic(err)
	}
	return m
}

// Main is the whole main function of a single-service binary: it reads the common settings
// (Config) and the module's own settings from flags and the environment, checks them, builds
// the module with build (whose error is reported as a setting's), and serves it until SIGINT or
// SIGTERM.
func Main(name, summary string, build func() (Module, error), settings ...Settings) {
	var common Config
	fs := Flags(name, summary, &common, settings...)
	checks := []config.Validator{&common}
	for _, s := range settings {
		checks = append(checks, s)
	}
	config.Load(fs, os.Args[1:], checks...)
	m, err := build()
	if err != nil {
		fmt.Fprintf(fs.Output(), "%s: %v\n(%s -h lists every setting)\n", name, err, name)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := logging.New(os.Stderr, common.Log.Level, name)
	if err := run(ctx, log, name, common, m); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, name string, cfg Config, modules ...Module) error {
	shutdown, err := tracing.Setup(ctx, name)
	if err != nil {
		return err
	}
	defer func() { _ = shutdown(context.Background()) }()
	cli, err := etcdx.Connect(ctx, cfg.Etcd)
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.GRPCAddr, err)
	}
	return Serve(ctx, log, lis, cli, modules...)
}
