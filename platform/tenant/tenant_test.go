package tenant_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/openhavip/havip/platform/tenant"
)

// incoming is the context of a request that arrived with the given metadata pairs.
func incoming(pairs ...string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(pairs...))
}

// TestAccount: an account is there only when one was set and it is not empty.
func TestAccount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ctx    context.Context
		want   string
		wantOK bool
	}{
		{name: "none", ctx: context.Background()},
		{name: "empty", ctx: tenant.WithAccount(context.Background(), "")},
		{name: "set", ctx: tenant.WithAccount(context.Background(), "acct-1"), want: "acct-1", wantOK: true},
		{name: "set again", ctx: tenant.WithAccount(tenant.WithAccount(context.Background(), "acct-1"), "acct-2"), want: "acct-2", wantOK: true},
		{name: "metadata alone is not an account", ctx: incoming(tenant.MetadataKey, "acct-1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := tenant.Account(tc.ctx)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("Account = %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
