package inproc

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type service struct {
	testgrpc.UnimplementedTestServiceServer
}

// UnaryCall echoes the payload with the caller's "who" metadata, and scribbles on its request.
func (service) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get("who")) == 0 {
		return nil, status.Error(codes.Unauthenticated, "who?")
	}
	body := append([]byte(md.Get("who")[0]+":"), req.GetPayload().GetBody()...)
	req.Payload.Body = []byte("changed by the server")
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: body}}, nil
}

// TestChannel: calls wait until the channel is ready, go through the interceptor with the
// caller's metadata, leave the caller's request alone, and return the handler's status.
func TestChannel(t *testing.T) {
	c := New()
	var intercepted []string
	c.SetInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		intercepted = append(intercepted, info.FullMethod)
		return handler(ctx, req)
	})
	testgrpc.RegisterTestServiceServer(c, service{})
	client := testgrpc.NewTestServiceClient(c)

	early, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := client.UnaryCall(early, &testgrpc.SimpleRequest{}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a call before Ready: %v", err)
	}
	c.Ready()

	req := &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("hi")}}
	resp, err := client.UnaryCall(metadata.AppendToOutgoingContext(context.Background(), "who", "ann"), req)
	if err != nil || string(resp.GetPayload().GetBody()) != "ann:hi" {
		t.Fatalf("call: %v %v", resp, err)
	}
	if string(req.GetPayload().GetBody()) != "hi" {
		t.Errorf("the server changed the caller's request: %q", req.GetPayload().GetBody())
	}
	if len(intercepted) != 1 || intercepted[0] != "/grpc.testing.TestService/UnaryCall" {
		t.Errorf("interceptor saw %v", intercepted)
	}
	if _, err := client.UnaryCall(context.Background(), req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a call without metadata: %v", err)
	}
	if _, err := client.EmptyCall(context.Background(), &testgrpc.Empty{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("an unimplemented method: %v", err)
	}
	if err := c.Invoke(context.Background(), "/no.Such/Method", req, &testgrpc.SimpleResponse{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("an unknown method: %v", err)
	}
	if _, err := client.StreamingOutputCall(context.Background(), &testgrpc.StreamingOutputCallRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("a stream: %v", err)
	}
}
