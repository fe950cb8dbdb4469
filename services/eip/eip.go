// Package eip wires the EIP services (eip.v1.EipService, eip.v1.NatRuleService) into a process.
package eip

import (
	"context"
	"flag"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/eipbind"
	"github.com/openhavip/havip/platform/ipalloc"
	"github.com/openhavip/havip/platform/ownercache"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/eip/server"
	"github.com/openhavip/havip/services/eip/store"
)

// DefaultPools is the public pool by default: TEST-NET-3 (RFC 5737), which no real network
// routes.
const DefaultPools = "203.0.113.0/24"

// Config is the EIP service's settings. A zero field means its default.
type Config struct {
	// Pools lists the public pools, CIDRs or first-last ranges, comma-separated (-eip-pools,
	// HAVIP_EIP_POOLS; default DefaultPools).
	Pools string
}

var poolsSetting = config.Setting{Flag: "eip-pools", Env: "HAVIP_EIP_POOLS"}

func (c Config) withDefaults() Config {
	if c.Pools == "" {
		c.Pools = DefaultPools
	}
	return c
}

// RegisterFlags registers every setting on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	*c = c.withDefaults()
	config.String(fs, &c.Pools, poolsSetting, "the public pools EIPs come from, comma-separated: IPv4 CIDRs (less their network and\nbroadcast addresses) or first-last ranges")
}

// Validate reports the first setting that is not valid.
func (c Config) Validate() error {
	_, err := c.ranges()
	return err
}

// ranges parses the pools.
func (c Config) ranges() ([]ipalloc.Range, error) {
	c = c.withDefaults()
	r, err := store.ParsePools(c.Pools)
	if err != nil {
		return nil, poolsSetting.Errorf(c.Pools, "%w", err)
	}
	return r, nil
}

// NewModule checks cfg and returns the EIP services (eip.v1.EipService, eip.v1.NatRuleService).
func NewModule(cfg Config) (service.Module, error) {
	ranges, err := cfg.ranges()
	if err != nil {
		return service.Module{}, err
	}
	return service.Module{
		Name: "eip",
		Start: func(ctx context.Context, deps service.Deps) (func(grpc.ServiceRegistrar), error) {
			st := store.New(deps.Etcd, ownercache.Of(deps), deps.Log, ranges)
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
	}, nil
}

func unbinder(cli *clientv3.Client) func(ctx context.Context, account, havipID string) error {
	return func(ctx context.Context, account, havipID string) error {
		_, _, err := eipbind.UnbindHaVip(ctx, cli, account, havipID)
		return err
	}
}
