// Package eip wires the EIP services (eip.v1.EipService, eip.v1.NatRuleService) into a process.
package eip

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/eipbind"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/eip/server"
	"github.com/openhavip/havip/services/eip/store"
)

// DefaultPools is the public pool when HAVIP_EIP_POOLS is unset: TEST-NET-3 (RFC 5737), which
// no real network routes.
const DefaultPools = "203.0.113.0/24"

// Module is the EIP service; HAVIP_EIP_POOLS lists its public pools (CIDRs or first-last
// ranges, comma-separated).
var Module = service.Module{
	Name: "eip",
	Start: func(ctx context.Context, deps service.Deps) (func(grpc.ServiceRegistrar), error) {
		ranges, err := store.ParsePools(config.Env("HAVIP_EIP_POOLS", DefaultPools))
		if err != nil {
			return nil, fmt.Errorf("HAVIP_EIP_POOLS: %w", err)
		}
		st := store.New(deps.Etcd, deps.Log, ranges)
		if err := st.Start(ctx); err != nil {
			return nil, err
		}
		srv := server.New(st, unbinder(deps.Etcd))
		nat := server.NewNat(st)
		return func(r grpc.ServiceRegistrar) {
			eipv1.RegisterEipServiceServer(r, srv)
			eipv1.RegisterNatRuleServiceServer(r, nat)
		}, nil
	},
}

func unbinder(cli *clientv3.Client) func(ctx context.Context, account, havipID string) error {
	return func(ctx context.Context, account, havipID string) error {
		_, err := eipbind.UnbindHaVip(ctx, cli, account, havipID)
		return err
	}
}
