package authz_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/authz"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/tenant"
)

// A server installs the interceptor; its handlers read the caller's account from the context,
// and pass it on with tenant.Outgoing when they call another service. Here the calls are made in
// process, so they come from the server's own identity (a service), which may assert an account.
func Example() {
	self := identity.ID{Kind: identity.Service, Name: "havipd"}
	intercept := authz.New(nil, self, false).UnaryServerInterceptor() // grpc.ChainUnaryInterceptor(..., intercept)
	handler := func(ctx context.Context, _ any) (any, error) {
		account, _ := tenant.Account(ctx)
		return "hello " + account, nil
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/ipam.v1.IpamService/DescribeVpcs"}

	// What a client sends: tenant.Outgoing(ctx, "acct-1") puts it in the request's metadata.
	md, _ := metadata.FromOutgoingContext(tenant.Outgoing(context.Background(), "acct-1"))
	resp, err := intercept(metadata.NewIncomingContext(context.Background(), md), nil, info, handler)
	fmt.Println(resp, err)

	// A request without an account is refused before the handler runs.
	_, err = intercept(context.Background(), nil, info, handler)
	fmt.Println(apierr.Reason(err))
	// Output:
	// hello acct-1 <nil>
	// AuthFailure
}
