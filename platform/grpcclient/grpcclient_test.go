package grpcclient_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/openhavip/havip/platform/grpcclient"
)

// counted answers health checks and counts them.
type counted struct {
	healthpb.UnimplementedHealthServer
	n atomic.Int64
}

func (c *counted) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	c.n.Add(1)
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// TestOptionsSpreadCalls: a name that resolves to two replicas gets calls on both, and only the
// live one once the other stops.
func TestOptionsSpreadCalls(t *testing.T) {
	var replicas [2]*counted
	var servers [2]*grpc.Server
	var addrs []resolver.Address
	for i := range replicas {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		replicas[i], servers[i] = &counted{}, grpc.NewServer()
		healthpb.RegisterHealthServer(servers[i], replicas[i])
		go func() { _ = servers[i].Serve(lis) }()
		t.Cleanup(servers[i].Stop)
		addrs = append(addrs, resolver.Address{Addr: lis.Addr().String()})
	}
	r := manual.NewBuilderWithScheme("replicas") // as DNS would answer a name with two addresses
	r.InitialState(resolver.State{Addresses: addrs})
	conn, err := grpc.NewClient("replicas:///svc", append(grpcclient.Options(nil), grpc.WithResolvers(r))...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	client := healthpb.NewHealthClient(conn)
	call := func() error {
		_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		return err
	}
	// round_robin picks among the connections that are ready, so the first calls may all go to
	// the replica that connected first; within a few seconds both must be taking calls.
	bothCalled(t, replicas, call)
	// A call that races the stop may fail (Unavailable: the request was sent, so it is not
	// retried); once the client has seen the connection close, every call goes to the live one.
	servers[0].Stop()
	deadline := time.Now().Add(5 * time.Second)
	for ok := 0; ok < 10; {
		if time.Now().After(deadline) {
			t.Fatalf("with one replica down: %d calls in a row succeeded, want 10", ok)
		}
		before := replicas[1].n.Load()
		if err := call(); err != nil {
			ok = 0
			continue
		}
		if replicas[1].n.Load() != before+1 {
			t.Fatal("a call succeeded, but not on the live replica")
		}
		ok++
	}
}

// TestNewClientList: a comma-separated list of addresses gets calls on each.
func TestNewClientList(t *testing.T) {
	var replicas [2]*counted
	var addrs []string
	for i := range replicas {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = &counted{}
		srv := grpc.NewServer()
		healthpb.RegisterHealthServer(srv, replicas[i])
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		addrs = append(addrs, lis.Addr().String())
	}
	conn, err := grpcclient.NewClient(addrs[0]+", "+addrs[1], grpcclient.Options(nil)...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	bothCalled(t, replicas, func() error {
		_, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		return err
	})
	if _, err := grpcclient.NewClient("127.0.0.1:1,nope", grpcclient.Options(nil)...); err == nil {
		t.Fatal("a list with an address that is not host:port: no error")
	}
}

// bothCalled makes calls until each replica has answered one, failing on an error or if that
// takes more than 5 seconds.
func bothCalled(t *testing.T, replicas [2]*counted, call func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for replicas[0].n.Load() == 0 || replicas[1].n.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("calls per replica: %d and %d, want both > 0", replicas[0].n.Load(), replicas[1].n.Load())
		}
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
}
