// Package grpcclient dials the platform's services: mTLS, tracing, and calls spread over every replica a name resolves to.
package grpcclient

import (
	"google.golang.org/grpc"

	"github.com/openhavip/havip/platform/mtls"
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
// development only): its client certificate, tracing, and round-robin over the replicas.
func Options(src *mtls.Source) []grpc.DialOption {
	return append(tracing.ClientOptions(), mtls.DialOption(src), RoundRobin())
}
