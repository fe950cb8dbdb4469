// Package arpbroker wires the ARP ownership broker (arpbroker.v1.ArpBrokerService) into a process.
package arpbroker

import (
	"context"
	"flag"
	"time"

	"google.golang.org/grpc"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/ownercache"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/arpbroker/broker"
	"github.com/openhavip/havip/services/arpbroker/server"
)

// Config is the ARP broker's settings. A zero field means its default.
type Config struct {
	// HoldDown is the least time between two owner changes of one HAVIP, the flap damping
	// (-arp-hold-down, HAVIP_ARP_HOLD_DOWN; default broker.DefaultHoldDown, 3s).
	HoldDown time.Duration
	// ElectionTTL is the leader's session TTL: a dead leader is replaced within it
	// (-arp-election-ttl, HAVIP_ARP_ELECTION_TTL; whole seconds, at least 1s; default 5s).
	ElectionTTL time.Duration
	// AdvertiseAddr is the address other replicas forward claims to (-advertise-addr,
	// HAVIP_ADVERTISE_ADDR). Empty: the address this process serves gRPC on.
	AdvertiseAddr string
}

var (
	holdDownSetting      = config.Setting{Flag: "arp-hold-down", Env: "HAVIP_ARP_HOLD_DOWN"}
	electionTTLSetting   = config.Setting{Flag: "arp-election-ttl", Env: "HAVIP_ARP_ELECTION_TTL"}
	advertiseAddrSetting = config.Setting{Flag: "advertise-addr", Env: "HAVIP_ADVERTISE_ADDR"}
)

func (c Config) withDefaults() Config {
	if c.HoldDown == 0 {
		c.HoldDown = broker.DefaultHoldDown
	}
	if c.ElectionTTL == 0 {
		c.ElectionTTL = broker.DefaultElectionTTL * time.Second
	}
	return c
}

// RegisterFlags registers every setting on fs, for arpbrokerd.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.RegisterSuiteFlags(fs)
	config.String(fs, &c.AdvertiseAddr, advertiseAddrSetting, "address other replicas forward claims to (empty: -grpc-addr)")
}

// RegisterSuiteFlags registers the settings that also apply in the one-process suite (one
// replica): all but -advertise-addr.
func (c *Config) RegisterSuiteFlags(fs *flag.FlagSet) {
	*c = c.withDefaults()
	config.Duration(fs, &c.HoldDown, holdDownSetting, "least time between two owner changes of one HAVIP (flap damping)")
	config.Duration(fs, &c.ElectionTTL, electionTTLSetting, "the leader's session TTL, whole seconds: a dead leader is replaced within it")
}

// Validate reports the first setting that is not valid.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.HoldDown < 0 {
		return holdDownSetting.Errorf(c.HoldDown, "want a positive duration")
	}
	if c.ElectionTTL < time.Second || c.ElectionTTL%time.Second != 0 {
		return electionTTLSetting.Errorf(c.ElectionTTL, "want whole seconds, at least 1s")
	}
	return nil
}

// NewModule checks cfg and returns the ARP broker.
func NewModule(cfg Config) (service.Module, error) {
	if err := cfg.Validate(); err != nil {
		return service.Module{}, err
	}
	cfg = cfg.withDefaults()
	return service.Module{
		Name: "arpbroker",
		Start: func(ctx context.Context, deps service.Deps) (func(grpc.ServiceRegistrar), error) {
			addr := cfg.AdvertiseAddr
			if addr == "" {
				addr = deps.GRPCAddr
			}
			b := broker.New(deps.Etcd, havipcache.Of(deps), ownercache.Of(deps), deps.Log, broker.Config{HoldDown: cfg.HoldDown, ElectionTTL: int(cfg.ElectionTTL / time.Second), Addr: addr})
			if err := b.Start(ctx); err != nil {
				return nil, err
			}
			srv := server.New(b, deps.Dial, deps.Log)
			context.AfterFunc(ctx, srv.Close)
			return func(r grpc.ServiceRegistrar) { arpbrokerv1.RegisterArpBrokerServiceServer(r, srv) }, nil
		},
	}, nil
}
