// Package service runs service binaries: settings, logging, tracing, metrics, etcd, one gRPC server, graceful stop.
package service

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/authz"
	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/etcdx"
	"github.com/openhavip/havip/platform/gcfloor"
	"github.com/openhavip/havip/platform/grpcclient"
	"github.com/openhavip/havip/platform/grpcserver"
	"github.com/openhavip/havip/platform/healthcheck"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/inproc"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/platform/metrics"
	"github.com/openhavip/havip/platform/mtls"
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
	// Dial are the options of connections to other services: this process's client
	// certificate, and tracing.
	Dial []grpc.DialOption
	// Shared holds what the modules of the process share (SharedValue).
	Shared *Shared
}

// Shared holds what the modules of one process share (a cache several of them read), each
// value made by the first module that asks for it.
type Shared struct {
	mu     sync.Mutex
	values map[string]any
}

// SharedValue is the value s holds at key, made by mk at the first call; a nil s makes a new
// value at each call.
func SharedValue[T any](s *Shared, key string, mk func() T) T {
	if s == nil {
		return mk()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.values[key]; ok {
		return v.(T)
	}
	v := mk()
	if s.values == nil {
		s.values = map[string]any{}
	}
	s.values[key] = v
	return v
}

// Security is how a process proves who it is and checks its callers.
type Security struct {
	// TLS is the process's certificate and trusted CA; nil serves and calls in plaintext
	// (development only), where every caller is trusted as any identity.
	TLS *mtls.Source
	// Keys are the API keys accepted as Bearer credentials on tenant calls; nil accepts none.
	Keys *apikey.Keys
	// Rules add to platform/authz's policy, for services outside the platform's own (examples,
	// tests).
	Rules []authz.Rule
}

// Self is the identity the process serves and calls as (identity.Dev in plaintext).
func (s Security) Self() identity.ID {
	if s.TLS == nil {
		return identity.ID{Kind: identity.Dev}
	}
	return s.TLS.Identity()
}

// DialOptions are the options of a connection to another service: the client certificate,
// tracing, and round-robin over its replicas (platform/grpcclient).
func (s Security) DialOptions() []grpc.DialOption {
	return grpcclient.Options(s.TLS)
}

// ServerOptions are the options of a server that authenticates with s and authorizes with
// platform/authz's policy.
func (s Security) ServerOptions(log *slog.Logger) grpcserver.Options {
	return grpcserver.Options{Creds: mtls.ServerCredentials(s.TLS, log), Authz: authz.New(s.Keys, s.Self(), s.TLS == nil).With(s.Rules...)}
}

// Module builds one gRPC service: it starts what it needs (until ctx ends) and returns the
// function that registers it on a server.
type Module struct {
	Name  string
	Start func(ctx context.Context, deps Deps) (func(grpc.ServiceRegistrar), error)
}

// Serve starts every module and serves them all on lis, secured by sec, until ctx ends, then
// stops gracefully.
func Serve(ctx context.Context, log *slog.Logger, lis net.Listener, cli *clientv3.Client, sec Security, modules ...Module) error {
	return ServeLocal(ctx, log, lis, cli, sec, nil, modules...)
}

// ServeLocal is Serve that also registers the services on local (a fresh channel when nil),
// for callers in the same process — the modules (Deps.Local) and, say, a gateway: it runs them
// through the server's unary interceptors.
func ServeLocal(ctx context.Context, log *slog.Logger, lis net.Listener, cli *clientv3.Client, sec Security, local *inproc.Channel, modules ...Module) error {
	srv := grpcserver.New(log, sec.ServerOptions(log))
	if local == nil {
		local = inproc.New()
	}
	local.SetInterceptor(srv.UnaryInterceptor())
	reg := tee{srv.GRPC, local}
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The modules load their caches at once (each on its own; a module calls another only
	// through local, which answers once every module is registered), then register in order.
	shared := &Shared{}
	registers := make([]func(grpc.ServiceRegistrar), len(modules))
	errs := make([]error, len(modules))
	var wg sync.WaitGroup
	for i, m := range modules {
		wg.Go(func() {
			registers[i], errs[i] = m.Start(mctx, Deps{Etcd: cli, Log: log.With("module", m.Name), GRPCAddr: lis.Addr().String(), Local: local, Dial: sec.DialOptions(), Shared: shared})
			if errs[i] != nil {
				errs[i] = fmt.Errorf("start %s: %w", m.Name, errs[i])
				cancel()
			}
		})
	}
	wg.Wait()
	var first error // a module's failure rather than the others' cancellation by it
	for _, err := range errs {
		if err != nil && (first == nil || errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)) {
			first = err
		}
	}
	if first != nil {
		return first
	}
	for _, register := range registers {
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
	// TLS names the process's certificate files (-ca, -cert, -key; HAVIP_TLS_*), which also
	// secure its etcd client when the endpoints are https://.
	TLS mtls.Config
	// KeysFile holds the API keys accepted as Bearer credentials on tenant calls (-keys,
	// HAVIP_API_KEYS_FILE; empty: none).
	KeysFile string
	// InsecureEtcd lets the process call etcd in plaintext (http:// endpoints) although it
	// serves mTLS: for development and tests only (-insecure-etcd, HAVIP_INSECURE_ETCD).
	// Without it, an http:// endpoint stops the process at start.
	InsecureEtcd bool
	// Metrics is where the process serves Prometheus /metrics (-metrics-addr,
	// HAVIP_METRICS_ADDR; default metrics.DefaultAddrOf the binary, "off" for none), and
	// whether Go's profiles too (-pprof, HAVIP_PPROF; default off).
	Metrics metrics.Config
}

// Defaults of Config.
const (
	DefaultGRPCAddr = "127.0.0.1:50051"
	DefaultEtcd     = "https://127.0.0.1:2379"
)

var (
	grpcAddrSetting = config.Setting{Flag: "grpc-addr", Env: "HAVIP_GRPC_ADDR"}
	etcdSetting     = config.Setting{Flag: "etcd", Env: "HAVIP_ETCD_ENDPOINTS"}
	keysSetting     = config.Setting{Flag: "keys", Env: "HAVIP_API_KEYS_FILE"}
	insecureEtcd    = config.Setting{Flag: "insecure-etcd", Env: "HAVIP_INSECURE_ETCD"}
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

// RegisterFlags registers the common settings on fs; name is the binary's, which names its
// default certificate files (certs/<name>.crt, certs/<name>.key).
func (c *Config) RegisterFlags(fs *flag.FlagSet, name string) {
	*c = c.withDefaults()
	config.String(fs, &c.GRPCAddr, grpcAddrSetting, "address to serve gRPC on, host:port (port 0: any free port)")
	config.List(fs, &c.Etcd, etcdSetting, "comma-separated etcd endpoints (https:// ones are called with this process's certificate)")
	config.Bool(fs, &c.InsecureEtcd, insecureEtcd, "DEVELOPMENT ONLY: allow http:// (plaintext) etcd endpoints while serving mTLS")
	config.String(fs, &c.KeysFile, keysSetting, "API keys file (\"<account> sha256:<hex>\" lines) accepted as Bearer credentials on tenant calls; empty: none")
	c.TLS.RegisterFlags(fs, name)
	c.Log.RegisterFlags(fs)
	c.Metrics.RegisterFlags(fs, name)
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
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	if err := mtls.PlaintextOnLoopback(c.TLS.Plaintext, c.GRPCAddr); err != nil {
		return grpcAddrSetting.Errorf(c.GRPCAddr, "%v", err)
	}
	if !c.TLS.Plaintext && !c.InsecureEtcd {
		for _, e := range c.Etcd {
			if !strings.HasPrefix(e, "https://") {
				return etcdSetting.Errorf(strings.Join(c.Etcd, ","), "%q is plaintext: etcd is a hop like the others; use https:// (etcd with client-cert auth), or -insecure-etcd for development", e)
			}
		}
	}
	if err := c.Metrics.Validate(); err != nil {
		return err
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

// EtcdTLS is the TLS configuration of a client of etcd at endpoints: src's certificate when
// they are https://, nil (plaintext) otherwise or when src is nil.
func EtcdTLS(src *mtls.Source, endpoints []string) *tls.Config {
	if src == nil || !slices.ContainsFunc(endpoints, func(e string) bool { return strings.HasPrefix(e, "https://") }) {
		return nil
	}
	return src.ClientConfig()
}

// Security loads the certificate files and the API keys the settings name.
func (c Config) Security(log *slog.Logger) (Security, error) {
	src, err := c.TLS.Load(log)
	if err != nil {
		return Security{}, err
	}
	sec := Security{TLS: src}
	if c.KeysFile != "" {
		if sec.Keys, err = apikey.Load(c.KeysFile); err != nil {
			return Security{}, keysSetting.Errorf(c.KeysFile, "%v", err)
		}
	}
	return sec, nil
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
	common.RegisterFlags(fs, name)
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
//
// `<name> health` instead asks the running process, at its own listener (-grpc-addr), with its
// own certificate, for its gRPC health, and exits 0 when it serves (Health): a container's
// healthcheck.
func Main(name, summary string, build func() (Module, error), settings ...Settings) {
	var common Config
	fs := Flags(name, summary+"\n`"+name+" health` exits 0 when the process serving at -grpc-addr answers SERVING (a container healthcheck).", &common, settings...)
	checks := []config.Validator{&common}
	for _, s := range settings {
		checks = append(checks, s)
	}
	args, health := healthcheck.Args(os.Args[1:])
	config.Load(fs, args, checks...)
	if health {
		healthcheck.Exit(name, Health(context.Background(), common))
	}
	gcfloor.Set(gcfloor.Size)
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
	ms, err := metrics.Start(log, name, cfg.Metrics)
	if err != nil {
		return err
	}
	defer func() { _ = ms.Stop(context.Background()) }()
	sec, err := cfg.Security(log)
	if err != nil {
		return err
	}
	etcdTLS := EtcdTLS(sec.TLS, cfg.Etcd)
	if sec.TLS != nil && etcdTLS == nil {
		log.Warn("calling etcd in plaintext (-insecure-etcd): for development only", "etcd", cfg.Etcd)
	}
	cli, err := etcdx.ConnectTLS(ctx, cfg.Etcd, etcdTLS)
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.GRPCAddr, err)
	}
	log.Info("serving", "identity", sec.Self().String(), "api_keys", cfg.KeysFile != "")
	return Serve(ctx, log, lis, cli, sec, modules...)
}
