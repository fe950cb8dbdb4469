// Package grpcserver assembles a gRPC server the same way for every service and runs it until shutdown.
package grpcserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/authz"
	"github.com/openhavip/havip/platform/tracing"
)

// Server is a gRPC server with health, reflection, tracing, authorization and error mapping.
type Server struct {
	GRPC   *grpc.Server
	health *health.Server
	log    *slog.Logger
	// DrainTimeout bounds the graceful stop; after it, remaining calls are cut.
	DrainTimeout time.Duration
	authorize    grpc.UnaryServerInterceptor
}

// UnaryInterceptor is the server's own chain of unary interceptors (error mapping, panic
// recovery, authorization), for calls made in process (platform/inproc), which the authorizer
// takes as the server's own identity's; the trace context needs no extraction there, it travels
// in the caller's context.
func (s *Server) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return s.unaryErrors(ctx, req, info, func(ctx context.Context, req any) (any, error) {
			return s.authorize(ctx, req, info, handler)
		})
	}
}

// How long a connection lives before the server asks the client to make a new one (gRPC adds
// ±10% jitter), and how long its calls then get to finish; streams (watches) are cut after the
// grace and their clients watch again.
const (
	MaxConnectionAge      = 15 * time.Minute
	MaxConnectionAgeGrace = time.Minute
)

// Options are how a server authenticates and authorizes its callers.
type Options struct {
	// Creds secure the listener (mtls.ServerCredentials); nil serves plaintext.
	Creds credentials.TransportCredentials
	// Authz authorizes every call (platform/authz); required.
	Authz *authz.Authorizer
	// MaxConnectionAge overrides MaxConnectionAge (tests).
	MaxConnectionAge time.Duration
}

// New builds the server. Register services on s.GRPC before calling Serve.
func New(log *slog.Logger, o Options) *Server {
	if o.Authz == nil {
		panic("grpcserver: Options.Authz is required")
	}
	s := &Server{log: log, health: health.NewServer(), DrainTimeout: 10 * time.Second, authorize: o.Authz.UnaryServerInterceptor()}
	opts := append(tracing.ServerOptions(),
		grpc.ChainUnaryInterceptor(s.unaryErrors, s.authorize, annotate),
		grpc.ChainStreamInterceptor(s.streamErrors, o.Authz.StreamServerInterceptor(), annotateStream),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// Every connection handshakes again within MaxConnectionAge (plus grace): a certificate
		// that expired, or whose CA was dropped, loses its connections too, not only new ones.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: cmp.Or(o.MaxConnectionAge, MaxConnectionAge), MaxConnectionAgeGrace: MaxConnectionAgeGrace}),
		grpc.NumStreamWorkers(streamWorkers),
	)
	if o.Creds != nil {
		opts = append(opts, grpc.Creds(o.Creds))
	}
	s.GRPC = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s.GRPC, s.health)
	reflection.Register(s.GRPC)
	return s
}

// Serve marks every registered service SERVING and serves lis until ctx ends; then it reports
// NOT_SERVING, drains in-flight calls for up to DrainTimeout, and stops.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	for name := range s.GRPC.GetServiceInfo() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	errc := make(chan error, 1)
	go func() { errc <- s.GRPC.Serve(lis) }()
	s.log.Info("grpc serving", "addr", lis.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("grpc serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("grpc draining")
	s.health.Shutdown() // every service NOT_SERVING, so balancers move away
	done := make(chan struct{})
	go func() { s.GRPC.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.DrainTimeout):
		s.log.Warn("grpc drain timed out; stopping")
		s.GRPC.Stop()
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpc serve: %w", err)
	}
	s.log.Info("grpc stopped")
	return nil
}

func (s *Server) unaryErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer RecoverPanic(s.log, info.FullMethod, &err)
	resp, err = handler(ctx, req)
	return resp, s.mapErr(ctx, info.FullMethod, err)
}

func (s *Server) streamErrors(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer RecoverPanic(s.log, info.FullMethod, &err)
	return s.mapErr(ss.Context(), info.FullMethod, handler(srv, ss))
}

// mapErr turns a handler's error into its gRPC status, logging internal errors with the
// caller's request ID (x-request-id metadata, set by the REST gateway).
func (s *Server) mapErr(ctx context.Context, method string, err error) error {
	if err == nil {
		return nil
	}
	st := apierr.ToStatus(err)
	annotateRefusal(ctx, st)
	if st.Code() == codes.Internal || st.Code() == codes.Unknown {
		var requestID string
		if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("x-request-id")) > 0 {
			requestID = md.Get("x-request-id")[0]
		}
		s.log.Error("call failed", "method", method, "request_id", requestID, "err", err)
	}
	return st.Err()
}

// RecoverPanic turns a panic into the call's error Internal, logged with its stack, rather than
// the end of the process. Defer it where a call of method is served: in the handler, or in a
// goroutine the handler hands work to.
func RecoverPanic(log *slog.Logger, method string, err *error) {
	if r := recover(); r != nil {
		log.Error("panic in handler", "method", method, "panic", r, "stack", string(debug.Stack()))
		*err = status.Error(codes.Internal, "internal error")
	}
}

// streamWorkers is how many goroutines serve calls, each in turn, before a call gets a
// goroutine of its own: a worker's stack has grown to what a call needs, where a new
// goroutine's grows (and is copied) anew for every call.
const streamWorkers = 256
