// Package inproc calls unary gRPC methods of services registered in this process directly, through the server's interceptors, with no network hop.
package inproc

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Channel is a grpc.ClientConnInterface over the services registered on it (as a
// grpc.ServiceRegistrar). A call runs the method's handler under the interceptor, with the
// caller's outgoing metadata as incoming metadata, on copies of the request and response, so
// the caller sees what a remote call would show. Streams are not supported.
type Channel struct {
	mu        sync.RWMutex
	methods   map[string]method // by full method name, "/pkg.Service/Method"
	intercept grpc.UnaryServerInterceptor
	ready     chan struct{}
	readyOnce sync.Once
}

type method struct {
	impl    any
	handler grpc.MethodHandler
}

// New returns an empty channel.
func New() *Channel { return &Channel{methods: map[string]method{}, ready: make(chan struct{})} }

// Ready lets calls through: until then they wait (the services are still starting).
func (c *Channel) Ready() { c.readyOnce.Do(func() { close(c.ready) }) }

// SetInterceptor makes calls go through intercept; set it before registering services.
func (c *Channel) SetInterceptor(intercept grpc.UnaryServerInterceptor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.intercept = intercept
}

// RegisterService records the unary methods of a service.
func (c *Channel) RegisterService(desc *grpc.ServiceDesc, impl any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range desc.Methods {
		c.methods["/"+desc.ServiceName+"/"+m.MethodName] = method{impl: impl, handler: m.Handler}
	}
}

// Invoke calls a registered unary method.
func (c *Channel) Invoke(ctx context.Context, fullMethod string, args, reply any, _ ...grpc.CallOption) error {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	c.mu.RLock()
	m, ok := c.methods[fullMethod]
	intercept := c.intercept
	c.mu.RUnlock()
	if !ok {
		return status.Errorf(codes.Unimplemented, "%s is not served in this process", fullMethod)
	}
	in, ok1 := args.(proto.Message)
	out, ok2 := reply.(proto.Message)
	if !ok1 || !ok2 {
		return status.Errorf(codes.Internal, "inproc: %s: not protobuf messages", fullMethod)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	ictx := metadata.NewIncomingContext(metadata.NewOutgoingContext(ctx, nil), md.Copy())
	// The caller is this process, whatever request ctx came with: its peer is not this call's.
	ictx = peer.NewContext(ictx, &peer.Peer{Addr: processAddr{}, LocalAddr: processAddr{}, AuthInfo: AuthInfo{}})
	dec := func(v any) error {
		proto.Merge(v.(proto.Message), in)
		return nil
	}
	resp, err := m.handler(m.impl, ictx, dec, intercept)
	if err != nil {
		return status.Convert(err).Err()
	}
	proto.Reset(out)
	if m, ok := resp.(proto.Message); ok && m != nil {
		proto.Merge(out, m)
	}
	return nil
}

// AuthInfo is the credentials of a call made in process: the peer a handler sees (in
// peer.FromContext) for such a call, whose caller is the process itself.
type AuthInfo struct{}

// AuthType names the kind of credentials.
func (AuthInfo) AuthType() string { return "inproc" }

// processAddr is the address of the peer of a call made in process.
type processAddr struct{}

func (processAddr) Network() string { return "inproc" }
func (processAddr) String() string  { return "in process" }

// NewStream refuses: only unary methods are served in process.
func (c *Channel) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "inproc: streams are not supported")
}
