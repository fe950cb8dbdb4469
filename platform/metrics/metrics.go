// Package metrics serves the process's OpenTelemetry metrics in the Prometheus text format on a listener of its own.
//
// Packages make their instruments once, at init, from Meter (OpenTelemetry's global meter
// provider): until Start installs the provider, they record nothing at the cost of an atomic
// load; once it has, /metrics on the listener serves them, with the Go runtime's and the
// process's own series.
package metrics

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof" // (also registers on http.DefaultServeMux, which no server here serves)
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/openhavip/havip/platform/config"
)

// DefaultAddr is where a process serves /metrics unless told otherwise: loopback, on the port
// OpenTelemetry's Prometheus exporters use by convention. The daemons default to the ports
// after it (DefaultAddrOf), so that several run on one host. A container or a host that
// Prometheus scrapes from elsewhere sets -metrics-addr (e.g. 0.0.0.0:9464).
const DefaultAddr = "127.0.0.1:9464"

// defaultPorts are the daemons' default /metrics ports; any other process (the suite) uses
// DefaultAddr's.
var defaultPorts = map[string]string{"ipamd": "9465", "havipd": "9466", "arpbrokerd": "9467", "eipd": "9468", "gatewayd": "9469"}

// DefaultAddrOf is the default /metrics address of the binary named name.
func DefaultAddrOf(name string) string {
	if p, ok := defaultPorts[name]; ok {
		return "127.0.0.1:" + p
	}
	return DefaultAddr
}

// Off is the -metrics-addr value that serves no metrics (an empty value means the same).
const Off = "off"

// Config is where a process serves its metrics.
type Config struct {
	// Addr is the address of the /metrics listener, host:port (port 0: any free port), or
	// "off" (or empty) for none (-metrics-addr, HAVIP_METRICS_ADDR; default DefaultAddrOf the
	// binary when set from flags; a Config built in code with an empty Addr serves none).
	Addr string
	// Pprof also serves Go's profiles (net/http/pprof) under /debug/pprof/ on the same
	// listener (-pprof, HAVIP_PPROF; default off): CPU, heap, goroutines, for an operator
	// finding where a daemon spends its time. A profile costs the daemon CPU while it runs,
	// and the goroutine dump shows request data: keep the listener on loopback or a trusted
	// network when this is on.
	Pprof bool
}

var (
	addrSetting  = config.Setting{Flag: "metrics-addr", Env: "HAVIP_METRICS_ADDR"}
	pprofSetting = config.Setting{Flag: "pprof", Env: "HAVIP_PPROF"}
)

// RegisterFlags registers -metrics-addr on fs, defaulting to DefaultAddrOf(name) (name: the
// binary's).
func (c *Config) RegisterFlags(fs *flag.FlagSet, name string) {
	if c.Addr == "" {
		c.Addr = DefaultAddrOf(name)
	}
	config.String(fs, &c.Addr, addrSetting, `address to serve Prometheus /metrics on, host:port (port 0: any free port); "off": none`)
	config.Bool(fs, &c.Pprof, pprofSetting, "also serve Go's profiles under /debug/pprof/ on the metrics listener")
}

// Disabled reports whether the process serves no metrics.
func (c Config) Disabled() bool { return c.Addr == "" || c.Addr == Off }

// Validate reports an address that is not host:port nor "off", and profiles asked for with no
// listener to serve them.
func (c Config) Validate() error {
	if c.Disabled() {
		if c.Pprof {
			return pprofSetting.Errorf(true, "profiles are served on the metrics listener, and %s is off", addrSetting)
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return addrSetting.Errorf(c.Addr, `want host:port, or "off"`)
	}
	return nil
}

// The process's one meter provider and registry: package instruments are bound to the first
// provider installed globally, so a process installs one, once, whatever serves it.
var (
	installOnce sync.Once
	registry    *prometheus.Registry
	installErr  error
	enabled     atomic.Bool
)

// install makes the process's provider, exporting into a registry of its own, and installs it
// as OpenTelemetry's global meter provider.
func install(service string) error {
	installOnce.Do(func() {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(
			otelprom.WithRegisterer(reg),
			otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
			otelprom.WithoutScopeInfo(),
			// Every series names its service, so that one query covers replicas and the suite.
			otelprom.WithResourceAsConstantLabels(attribute.NewAllowKeysFilter(semconv.ServiceNameKey)),
		)
		if err != nil {
			installErr = fmt.Errorf("prometheus exporter: %w", err)
			return
		}
		if err := reg.Register(collectors.NewGoCollector()); err != nil {
			installErr = fmt.Errorf("go collector: %w", err)
			return
		}
		if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			installErr = fmt.Errorf("process collector: %w", err)
			return
		}
		res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service)))
		if err != nil {
			installErr = fmt.Errorf("otel resource: %w", err)
			return
		}
		otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res)))
		registry = reg
		enabled.Store(true)
	})
	return installErr
}

// Enabled reports whether the process records metrics (Start has run with an address).
func Enabled() bool { return enabled.Load() }

// Server serves /metrics.
type Server struct {
	srv  *http.Server
	addr string
	done chan error
}

// Start installs the process's meter provider (named service) and serves /metrics on
// cfg.Addr until Stop; with cfg disabled it does nothing and returns nil. It logs the address
// it serves on ("metrics serving", addr).
func Start(log *slog.Logger, service string, cfg Config) (*Server, error) {
	if cfg.Disabled() {
		return nil, nil
	}
	if err := install(service); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s for metrics: %w", cfg.Addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler())
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index) // the named profiles: heap, goroutine, allocs, …
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s := &Server{
		// WriteTimeout bounds a scrape, and a CPU profile to under a minute.
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		addr: lis.Addr().String(),
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(lis) }()
	log.Info("metrics serving", "addr", s.addr)
	return s, nil
}

// Addr is the address the server listens on ("" for a nil server).
func (s *Server) Addr() string {
	if s == nil {
		return ""
	}
	return s.addr
}

// Stop stops serving (a nil server is a no-op); a scrape in progress gets until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	if s == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// Handler serves the process's metrics in the Prometheus text format (nothing until Start has
// installed the provider).
func Handler() http.Handler {
	if !Enabled() {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(registry, promhttp.HandlerOpts{})
}

// Meter is the meter of an instrumentation scope (a package's import path) from the global
// provider: instruments made from it at init record once Start has run.
func Meter(scope string) metric.Meter { return otel.Meter(scope) }

// Must returns an instrument, and panics on the error of making it (a programming error: a
// bad name or unit).
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Histogram bucket bounds, in seconds.
var (
	// FastBuckets fit calls of a fraction of a millisecond to a second: etcd transactions,
	// cache waits, stream lag.
	FastBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	// SubSecondBuckets fit what should take well under a second and must be seen when it
	// takes longer: owner changes (with a hold-down of seconds at the top).
	SubSecondBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10}
)

// RecordOptions are the options of a histogram's measurement with attrs, made once for
// measurements that always carry the same attributes: passing them (opts...) allocates nothing.
func RecordOptions(attrs ...attribute.KeyValue) []metric.RecordOption {
	return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}
}

// AddOptions are RecordOptions for a counter.
func AddOptions(attrs ...attribute.KeyValue) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}
}
