package authz_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/authz"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/tenant"
)

// incoming is the context of a request that arrived with the given metadata pairs.
func incoming(pairs ...string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(pairs...))
}

const tenantMethod = "/ipam.v1.IpamService/DescribeVpcs"

// inProcess authorizes calls made in process (no peer), as a service: it may assert accounts.
var inProcess = authz.New(nil, identity.ID{Kind: identity.Service, Name: "test"}, false)

// TestAccounts: an account is 1 to 64 of [A-Za-z0-9._-] starting with a letter or digit, given
// exactly once; anything else is refused with AuthFailure before the handler runs.
func TestAccounts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		md   []string // metadata pairs
		want string   // the account the handler sees; "" when the call is refused
	}{
		{name: "plain", md: []string{tenant.MetadataKey, "acct-1"}, want: "acct-1"},
		{name: "one letter", md: []string{tenant.MetadataKey, "a"}, want: "a"},
		{name: "one digit", md: []string{tenant.MetadataKey, "7"}, want: "7"},
		{name: "every allowed character", md: []string{tenant.MetadataKey, "Az09._-"}, want: "Az09._-"},
		{name: "ends with a dot", md: []string{tenant.MetadataKey, "a."}, want: "a."},
		{name: "64 characters", md: []string{tenant.MetadataKey, strings.Repeat("a", 64)}, want: strings.Repeat("a", 64)},
		{name: "key in capitals", md: []string{"X-HAVIP-Account", "acct-1"}, want: "acct-1"},
		{name: "other metadata too", md: []string{"traceparent", "x", tenant.MetadataKey, "acct-1"}, want: "acct-1"},
		{name: "no metadata"},
		{name: "other metadata only", md: []string{"x-other", "acct-1"}},
		{name: "empty", md: []string{tenant.MetadataKey, ""}},
		{name: "empty then a good one", md: []string{tenant.MetadataKey, "", tenant.MetadataKey, "acct-1"}},
		{name: "given twice", md: []string{tenant.MetadataKey, "acct-1", tenant.MetadataKey, "acct-1"}},
		{name: "two accounts", md: []string{tenant.MetadataKey, "acct-1", tenant.MetadataKey, "acct-2"}},
		{name: "65 characters", md: []string{tenant.MetadataKey, strings.Repeat("a", 65)}},
		{name: "starts with a dot", md: []string{tenant.MetadataKey, ".a"}},
		{name: "starts with an underscore", md: []string{tenant.MetadataKey, "_a"}},
		{name: "starts with a dash", md: []string{tenant.MetadataKey, "-a"}},
		{name: "space", md: []string{tenant.MetadataKey, "acct 1"}},
		{name: "slash", md: []string{tenant.MetadataKey, "acct/1"}},
		{name: "colon", md: []string{tenant.MetadataKey, "acct:1"}},
		{name: "NUL", md: []string{tenant.MetadataKey, "acct\x001"}},
		{name: "non-ASCII", md: []string{tenant.MetadataKey, "cliént"}},
	}
	unary := inProcess.UnaryServerInterceptor()
	stream := inProcess.StreamServerInterceptor()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := incoming(tc.md...)

			var got string
			called := false
			_, err := unary(ctx, "req", &grpc.UnaryServerInfo{FullMethod: tenantMethod}, func(ctx context.Context, req any) (any, error) {
				called = true
				got, _ = tenant.Account(ctx)
				return nil, nil
			})
			checkOutcome(t, "unary", tc.want, got, called, err)

			got, called = "", false
			err = stream(nil, &fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: tenantMethod}, func(srv any, ss grpc.ServerStream) error {
				called = true
				got, _ = tenant.Account(ss.Context())
				return nil
			})
			checkOutcome(t, "stream", tc.want, got, called, err)
		})
	}
}

func checkOutcome(t *testing.T, kind, want, got string, called bool, err error) {
	t.Helper()
	if want == "" {
		if called || apierr.Reason(err) != apierr.ReasonAuthFailure {
			t.Errorf("%s: handler called %v, error %v; want AuthFailure without calling the handler", kind, called, err)
		}
		return
	}
	if err != nil || !called || got != want {
		t.Errorf("%s: handler called %v with account %q, error %v; want account %q", kind, called, got, err, want)
	}
}

// fakeStream is a server stream with only a context, all the interceptor looks at.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *fakeStream) Context() context.Context { return s.ctx }

// TestHandlerErrorPassesThrough: what the handler returns reaches the caller unchanged.
func TestHandlerErrorPassesThrough(t *testing.T) {
	t.Parallel()
	want := apierr.NotFound("vpc-00000000 does not exist")
	resp, err := inProcess.UnaryServerInterceptor()(incoming(tenant.MetadataKey, "acct-1"), nil, &grpc.UnaryServerInfo{FullMethod: tenantMethod},
		func(context.Context, any) (any, error) { return "partial", want })
	if !errors.Is(err, want) || err.Error() != want.Error() || resp != "partial" {
		t.Errorf("got %v, %v; want partial, %v", resp, err, want)
	}
}

// TestOutgoing: the account set for a call to another service is the one that service's
// interceptor reads; setting it again replaces it (rather than sending two, which the callee
// would refuse), and the other outgoing metadata is kept.
func TestOutgoing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		ctx       context.Context
		want      string
		wantTrace bool // the traceparent set beside the account reaches the callee
	}{
		{name: "once", ctx: tenant.Outgoing(context.Background(), "acct-1"), want: "acct-1"},
		{name: "twice", ctx: tenant.Outgoing(tenant.Outgoing(context.Background(), "acct-1"), "acct-2"), want: "acct-2"},
		{name: "same twice", ctx: tenant.Outgoing(tenant.Outgoing(context.Background(), "acct-1"), "acct-1"), want: "acct-1"},
		{name: "with other metadata", ctx: tenant.Outgoing(metadata.AppendToOutgoingContext(context.Background(), "traceparent", "t"), "acct-1"), want: "acct-1", wantTrace: true},
		{name: "twice with other metadata", ctx: tenant.Outgoing(tenant.Outgoing(metadata.AppendToOutgoingContext(context.Background(), "traceparent", "t"), "acct-1"), "acct-2"), want: "acct-2", wantTrace: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			md, _ := metadata.FromOutgoingContext(tc.ctx)
			if got := len(md.Get("traceparent")) == 1; got != tc.wantTrace {
				t.Errorf("traceparent sent: %v, want %v (metadata %v)", got, tc.wantTrace, md)
			}
			var got string
			_, err := inProcess.UnaryServerInterceptor()(metadata.NewIncomingContext(context.Background(), md), nil, &grpc.UnaryServerInfo{FullMethod: tenantMethod},
				func(ctx context.Context, _ any) (any, error) {
					got, _ = tenant.Account(ctx)
					return nil, nil
				})
			if err != nil || got != tc.want {
				t.Errorf("callee saw account %q, error %v; want %q", got, err, tc.want)
			}
		})
	}
}
