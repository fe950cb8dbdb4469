package inproc_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/openhavip/havip/platform/inproc"
)

// greeter answers with the caller's "who" metadata and the request's body.
type greeter struct {
	testgrpc.UnimplementedTestServiceServer
}

func (greeter) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	body := fmt.Sprintf("%s from %v", req.GetPayload().GetBody(), md.Get("who"))
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: []byte(body)}}, nil
}

// A service registered on a Channel is called through a generated client as if it were remote:
// the caller's outgoing metadata arrives as incoming metadata, through the interceptor, with no
// network hop.
func ExampleChannel() {
	ch := inproc.New()
	ch.SetInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		fmt.Println("intercepted", info.FullMethod)
		return handler(ctx, req)
	})
	testgrpc.RegisterTestServiceServer(ch, greeter{}) // as on a *grpc.Server
	ch.Ready()                                        // calls wait until the services are registered

	client := testgrpc.NewTestServiceClient(ch)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "who", "havipd")
	resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("hello")}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(resp.GetPayload().GetBody()))

	// A handler's error reaches the caller as its gRPC status, as from a remote server.
	_, err = client.EmptyCall(ctx, &testgrpc.Empty{})
	fmt.Println(err)
	// Output:
	// intercepted /grpc.testing.TestService/UnaryCall
	// hello from [havipd]
	// intercepted /grpc.testing.TestService/EmptyCall
	// rpc error: code = Unimplemented desc = method EmptyCall not implemented
}
