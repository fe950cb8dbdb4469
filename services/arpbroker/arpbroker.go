// Package arpbroker wires the ARP ownership broker (arpbroker.v1.ArpBrokerService) into a process.
package arpbroker

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/arpbroker/broker"
	"github.com/openhavip/havip/services/arpbroker/server"
)

// Module is the ARP broker. HAVIP_ARP_HOLD_DOWN sets the flap-damping window (default 3s);
// HAVIP_ARP_ELECTION_TTL the leader's session TTL (default 5s: a dead leader is replaced
// within it); HAVIP_ADVERTISE_ADDR the address other replicas forward claims to (default:
// where it serves).
var Module = service.Module{
	Name: "arpbroker",
	Start: func(ctx context.Context, deps service.Deps) (func(grpc.ServiceRegistrar), error) {
		var cfg broker.Config
		if v := config.Env("HAVIP_ARP_HOLD_DOWN", ""); v != "" {
			d, err := config.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("HAVIP_ARP_HOLD_DOWN: %w", err)
			}
			cfg.HoldDown = d
		}
		if v := config.Env("HAVIP_ARP_ELECTION_TTL", ""); v != "" {
			d, err := config.ParseDuration(v)
			if err != nil || d < time.Second {
				return nil, fmt.Errorf("HAVIP_ARP_ELECTION_TTL=%q: want a duration of at least 1s", v)
			}
			cfg.ElectionTTL = int(d / time.Second)
		}
		cfg.Addr = config.Env("HAVIP_ADVERTISE_ADDR", deps.GRPCAddr)
		b := broker.New(deps.Etcd, deps.Log, cfg)
		if err := b.Start(ctx); err != nil {
			return nil, err
		}
		srv := server.New(b)
		context.AfterFunc(ctx, srv.Close)
		return func(r grpc.ServiceRegistrar) { arpbrokerv1.RegisterArpBrokerServiceServer(r, srv) }, nil
	},
}
