package grpcserver_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/authz"
	"github.com/openhavip/havip/platform/grpcserver"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/tenant"
)

// lookup answers for the caller's account, or with a domain error.
type lookup struct {
	testgrpc.UnimplementedTestServiceServer
}

func (lookup) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	account, err := tenant.Caller(ctx) // set by the server's interceptor
	if err != nil {
		return nil, err
	}
	id := string(req.GetPayload().GetBody())
	if id != "havip-0a1b2c3d" {
		return nil, apierr.NotFound("HAVIP %s does not exist", id) // knows nothing of gRPC
	}
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: []byte(id + " of " + account)}}, nil
}

// A service's gRPC server: register on s.GRPC, then Serve until the context ends (SIGTERM in a
// binary). Every call needs an account; domain errors reach the caller as their gRPC code and
// reason; health and reflection are served.
func ExampleServer() {
	// In plaintext, for the example; a real server has mtls.ServerCredentials, and each caller
	// an identity from its certificate. Policy rules name the methods and who may call them.
	authorizer := authz.New(nil, identity.ID{Kind: identity.Dev}, true).With(authz.Rule{Method: "/grpc.testing.TestService/", Access: authz.Tenant})
	srv := grpcserver.New(slog.New(slog.DiscardHandler), grpcserver.Options{Authz: authorizer})
	testgrpc.RegisterTestServiceServer(srv.GRPC, lookup{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)
	call := func(ctx context.Context, id string) {
		resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte(id)}})
		if err != nil {
			fmt.Printf("%s: %s (%s)\n", status.Code(err), apierr.Reason(err), status.Convert(err).Message())
			return
		}
		fmt.Println(string(resp.GetPayload().GetBody()))
	}
	call(context.Background(), "havip-0a1b2c3d") // no account
	actx := tenant.Outgoing(context.Background(), "acct-1")
	call(actx, "havip-0a1b2c3d")
	call(actx, "havip-ffffffff")

	h, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "grpc.testing.TestService"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("health:", h.GetStatus())

	cancel() // drains in-flight calls, then stops
	fmt.Println("stopped:", <-done)
	// Output:
	// Unauthenticated: AuthFailure (an account is required: authorization: Bearer <API key>, or "x-havip-account" from a gateway, service or operator)
	// havip-0a1b2c3d of acct-1
	// NotFound: ResourceNotFound (HAVIP havip-ffffffff does not exist)
	// health: SERVING
	// stopped: <nil>
}
