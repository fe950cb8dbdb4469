// Package tenant carries the account a request acts for in its context, and to the services it calls.
package tenant

import (
	"context"

	"google.golang.org/grpc/metadata"

	"github.com/openhavip/havip/platform/apierr"
)

// MetadataKey is the gRPC metadata key holding the caller's account.
const MetadataKey = "x-havip-account"

// ValidAccount reports whether a is 1 to 64 of [A-Za-z0-9._-], starting with a letter or digit.
func ValidAccount(a string) bool {
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
// (platform/authz refuses such calls to tenant methods before a handler runs).
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
