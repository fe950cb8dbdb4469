// Package grpcclient dials the platform's services: mTLS, tracing, calls spread over every replica a name resolves to, and retries of safe calls.
package grpcclient

import (
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/retry"
	"github.com/openhavip/havip/platform/tracing"
)

// RoundRobinConfig is the service config of every connection to a service: round_robin over
// every address the target resolves to. grpc.NewClient resolves a target without a scheme
// ("ipamd:50051") through DNS, so a name that resolves to several replicas — a docker-compose
// network alias, a Kubernetes headless service — gets one sub-connection per replica, each call
// goes to the next ready one, and a replica that goes away is skipped until it is back (the
// name is resolved again when a connection fails, at most every 30 seconds).
const RoundRobinConfig = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// RoundRobin is the dial option that sets RoundRobinConfig.
func RoundRobin() grpc.DialOption { return grpc.WithDefaultServiceConfig(RoundRobinConfig) }

// Options are the options of a connection to a service as src's identity (nil: plaintext,
// development only): its client certificate, tracing, round-robin over the replicas, and the
// retries of safe calls (Retry, with retry.DefaultBackoff and RetryAttempts).
func Options(src *mtls.Source) []grpc.DialOption {
	return append(tracing.ClientOptions(), mtls.DialOption(src), RoundRobin(),
		grpc.WithChainUnaryInterceptor(Retry(retry.DefaultBackoff, RetryAttempts)))
}

// listScheme is the resolver scheme of a target given as a list of addresses.
const listScheme = "havip-list"

// NewClient is grpc.NewClient, where target may also be a comma-separated list of host:port
// addresses — each replica's, as a host reaches them on their published ports: calls then go
// round-robin over the list (with RoundRobin among opts), and the connection's authority, which
// TLS checks each server's certificate against, is the first address.
func NewClient(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if !strings.Contains(target, ",") {
		return grpc.NewClient(target, opts...)
	}
	var addrs []resolver.Address
	for _, a := range strings.Split(target, ",") {
		a = strings.TrimSpace(a)
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("address %q of %q: %w", a, target, err)
		}
		addrs = append(addrs, resolver.Address{Addr: a})
	}
	r := manual.NewBuilderWithScheme(listScheme)
	r.InitialState(resolver.State{Addresses: addrs})
	return grpc.NewClient(listScheme+":///"+addrs[0].Addr, append(opts, grpc.WithResolvers(r))...)
}
