// Package tenant carries the caller's account from gRPC metadata into the request context.
package tenant

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/openhavip/havip/platform/apierr"
)

// MetadataKey is the gRPC metadata key holding the caller's account.
const MetadataKey = "x-havip-account"

// validAccount reports whether a is 1 to 64 of [A-Za-z0-9._-], starting with a letter or digit.
func validAccount(a string) bool {
	if a == "" || len(a) > 64 || a[0] == '.' || a[0] == '_' || a[0] == '-' {
		return false
	}
	for i := 0; i < len(a); i++ {
		switch c := a[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

type ctxKey struct{}

// WithAccount returns ctx carrying account, as the interceptor does for a request.
func WithAccount(ctx context.Context, account string) context.Context {
	return context.WithValue(ctx, ctxKey{}, account)
}

// Account returns the account of the request ctx belongs to.
func Account(ctx context.Context) (string, bool) {
	a, ok := ctx.Value(ctxKey{}).(string)
	return a, ok && a != ""
}

// Caller returns the account a handler acts for, or an AuthFailure when the call carries none
// (the interceptors refuse such calls before a handler runs, except exempt methods).
func Caller(ctx context.Context) (string, error) {
	a, ok := Account(ctx)
	if !ok {
		return "", apierr.AuthFailure("no account")
	}
	return a, nil
}

// Outgoing returns ctx with account set in the outgoing metadata, for calls to other services.
// An account set before is replaced: the callee refuses a request naming two.
func Outgoing(ctx context.Context, account string) context.Context {
	md, ok := metadata.FromOutgoingContext(ctx) // a copy
	if !ok {
		return metadata.AppendToOutgoingContext(ctx, MetadataKey, account)
	}
	md.Set(MetadataKey, account)
	return metadata.NewOutgoingContext(ctx, md)
}

// fromIncoming reads and checks the account of an incoming request.
func fromIncoming(ctx context.Context) (string, error) {
	vals := metadata.ValueFromIncomingContext(ctx, MetadataKey) // no copy of the whole metadata
	if len(vals) == 0 || vals[0] == "" {
		return "", apierr.AuthFailure("metadata %q is required", MetadataKey)
	}
	if len(vals) > 1 {
		return "", apierr.AuthFailure("metadata %q given %d times", MetadataKey, len(vals))
	}
	if !validAccount(vals[0]) {
		return "", apierr.AuthFailure("metadata %q is not a valid account", MetadataKey)
	}
	return vals[0], nil
}

// internal lists the services the platform calls itself, which act for no tenant.
var internal = []string{"/grpc.health.", "/grpc.reflection.", "/arpbroker.v1.", "/eip.v1.NatRuleService/"}

// exempt reports whether a method belongs to a service that needs no account.
func exempt(fullMethod string) bool {
	for _, p := range internal {
		if strings.HasPrefix(fullMethod, p) {
			return true
		}
	}
	return false
}

// UnaryServerInterceptor requires an account on every tenant-facing call and puts it in the context.
func UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if exempt(info.FullMethod) {
			return handler(ctx, req)
		}
		account, err := fromIncoming(ctx)
		if err != nil {
			return nil, err
		}
		return handler(WithAccount(ctx, account), req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streams.
func StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if exempt(info.FullMethod) {
			return handler(srv, ss)
		}
		account, err := fromIncoming(ss.Context())
		if err != nil {
			return err
		}
		return handler(srv, &accountStream{ServerStream: ss, ctx: WithAccount(ss.Context(), account)})
	}
}

type accountStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *accountStream) Context() context.Context { return s.ctx }
