// Package gateway is the REST/JSON front end of the public gRPC services (grpc-gateway), with API keys, request IDs and limits.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/gateway/console"
	"github.com/openhavip/havip/gateway/openapi"
	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/grpcclient"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/platform/tracing"
)

// Config is what the gateway needs.
type Config struct {
	// IpamAddr, HaVipAddr and EipAddr are the gRPC addresses of the services.
	IpamAddr, HaVipAddr, EipAddr string
	// Local, when set, carries the calls instead (services in this process, platform/inproc);
	// the addresses still answer /healthz.
	Local grpc.ClientConnInterface
	// Keys authenticates requests.
	Keys *apikey.Keys
	// TLS is the gateway's certificate for calling the services over mTLS (a gateway identity,
	// which may assert the account of the key it checked); nil calls them in plaintext
	// (development only).
	TLS *mtls.Source
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64
	// RequestTimeout bounds a call to the services (default 30s).
	RequestTimeout time.Duration
	Log            *slog.Logger
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultRequestTimeout = 30 * time.Second
)

// Gateway serves the REST routes.
type Gateway struct {
	cfg     Config
	conns   map[string]*grpc.ClientConn // by address
	backend []backend                   // what /healthz checks
	handler http.Handler
	spans   bool // record a span per request (tracing exports)

	idPrefix  string        // random, per gateway: request IDs from two gateways never meet
	idCounter atomic.Uint64 // makes each request ID of this gateway unique
}

type backend struct {
	service string
	conn    *grpc.ClientConn
}

// New connects to the services (lazily: they may start later) and builds the routes.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Keys == nil {
		return nil, errors.New("gateway: no API keys")
	}
	g := &Gateway{cfg: cfg, conns: map[string]*grpc.ClientConn{}, spans: tracing.Enabled()}
	prefix := make([]byte, 8)
	_, _ = rand.Read(prefix) // never fails (crypto/rand)
	g.idPrefix = hex.EncodeToString(prefix) + "-"
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
		// No client header reaches the services: the account and the request ID come from
		// the gateway alone (a forged x-havip-account or Grpc-Metadata-* header is dropped).
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMetadata(func(ctx context.Context, _ *http.Request) metadata.MD { return g.callMetadata(ctx) }),
		// A request is served by its own method only: no X-HTTP-Method-Override turning a POST
		// into a DELETE or PATCH, and no POST of an HTML form taken for a GET (both grpc-gateway
		// defaults). The other override headers (X-HTTP-Method, X-Method-Override) are read by
		// nothing here.
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithDisablePathLengthFallback(),
		runtime.WithErrorHandler(g.writeError),
		runtime.WithRoutingErrorHandler(g.routingError),
		runtime.SetQueryParameterParser(filterParser{}), // process-wide in grpc-gateway
	)
	type registration struct {
		service, addr string
		register      func(context.Context, *runtime.ServeMux, grpc.ClientConnInterface) error
	}
	ccs := map[string]grpc.ClientConnInterface{} // by service
	for _, r := range []registration{
		{ipamv1.IpamService_ServiceDesc.ServiceName, cfg.IpamAddr, func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error {
			return ipamv1.RegisterIpamServiceHandlerClient(ctx, mux, ipamv1.NewIpamServiceClient(cc))
		}},
		{havipv1.HaVipService_ServiceDesc.ServiceName, cfg.HaVipAddr, func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error {
			return havipv1.RegisterHaVipServiceHandlerClient(ctx, mux, havipv1.NewHaVipServiceClient(cc))
		}},
		{eipv1.EipService_ServiceDesc.ServiceName, cfg.EipAddr, func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error {
			return eipv1.RegisterEipServiceHandlerClient(ctx, mux, eipv1.NewEipServiceClient(cc))
		}},
	} {
		conn, err := g.conn(r.addr)
		if err != nil {
			g.Close()
			return nil, err
		}
		var cc grpc.ClientConnInterface = conn
		if cfg.Local != nil {
			cc = cfg.Local
		}
		if err := r.register(ctx, mux, cc); err != nil {
			g.Close()
			return nil, fmt.Errorf("register %s: %w", r.service, err)
		}
		g.backend = append(g.backend, backend{r.service, conn})
		ccs[r.service] = cc
	}
	routes := http.NewServeMux()
	routes.Handle("/v1/", g.authenticate(mux))
	havip := havipv1.NewHaVipServiceClient(ccs[havipv1.HaVipService_ServiceDesc.ServiceName])
	routes.Handle(keepalivedConfigPattern, g.authenticate(g.keepalivedConfig(havip, mux)))
	routes.HandleFunc("GET /healthz", g.healthz)
	routes.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.JSON)
	})
	// The web console: static files, calling the /v1/ routes above with the user's key.
	routes.Handle("GET /console/", console.Handler())
	routes.Handle("GET /console", console.Handler())
	routes.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		g.routingError(r.Context(), mux, nil, w, r, http.StatusNotFound)
	})
	g.handler = g.requestID(routes)
	return g, nil
}

// callMetadata is what every call to the services carries: the account of the request's key
// and the request ID (no header of the client's).
func (g *Gateway) callMetadata(ctx context.Context) metadata.MD {
	return metadata.Pairs(tenant.MetadataKey, accountOf(ctx), RequestIDHeaderMD, RequestIDOf(ctx))
}

func (g *Gateway) conn(addr string) (*grpc.ClientConn, error) {
	if c, ok := g.conns[addr]; ok {
		return c, nil
	}
	c, err := grpcclient.NewClient(addr, grpcclient.Options(g.cfg.TLS)...) // round-robin over the replicas the name (or list) gives
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	g.conns[addr] = c
	return c, nil
}

// Handler is the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Close closes the connections to the services.
func (g *Gateway) Close() {
	for _, c := range g.conns {
		_ = c.Close()
	}
}

// Serve serves HTTP on lis until ctx ends, then shuts down gracefully: no new connections, and
// requests in flight get up to drain to finish.
func (g *Gateway) Serve(ctx context.Context, lis net.Listener, drain time.Duration) error {
	srv := &http.Server{
		Handler:           g.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      g.cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(g.cfg.Log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down HTTP: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve HTTP: %w", err)
	}
	return nil
}
