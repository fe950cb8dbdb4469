// Package havip wires the HAVIP service (havip.v1.HaVipService) into a process.
package havip

import (
	"context"
	"flag"
	"fmt"
	"time"

	"google.golang.org/grpc"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/grpcclient"
	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/ownercache"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/havip/inventory"
	"github.com/openhavip/havip/services/havip/server"
	"github.com/openhavip/havip/services/havip/store"
)

// DefaultReservationTTL is how long a VIP reserved by a create that crashed stays taken.
const DefaultReservationTTL = 30 * time.Second

// Config is the HAVIP service's settings. A zero field means its default.
type Config struct {
	// ReservationTTL is how long a VIP reserved by a create that crashed stays taken
	// (-reservation-ttl, HAVIP_RESERVATION_TTL; at least 1s; default DefaultReservationTTL).
	ReservationTTL time.Duration
	// IpamAddr is ipamd's gRPC address (-ipam-addr, HAVIP_IPAM_ADDR). Empty: ipamd runs in
	// this process (the one-process suite) and is called there, with no network hop.
	IpamAddr string
}

var (
	reservationTTLSetting = config.Setting{Flag: "reservation-ttl", Env: "HAVIP_RESERVATION_TTL"}
	ipamAddrSetting       = config.Setting{Flag: "ipam-addr", Env: "HAVIP_IPAM_ADDR"}
)

func (c Config) withDefaults() Config {
	if c.ReservationTTL == 0 {
		c.ReservationTTL = DefaultReservationTTL
	}
	return c
}

// RegisterFlags registers every setting on fs, for havipd.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.RegisterSuiteFlags(fs)
	config.String(fs, &c.IpamAddr, ipamAddrSetting, "gRPC address of ipamd, or a comma-separated list of its replicas' addresses (called round-robin; required)")
}

// RegisterSuiteFlags registers the settings that also apply when ipamd runs in the same process
// (havip-suite): all but -ipam-addr.
func (c *Config) RegisterSuiteFlags(fs *flag.FlagSet) {
	*c = c.withDefaults()
	config.Duration(fs, &c.ReservationTTL, reservationTTLSetting, "how long a VIP reserved by a create that crashed stays taken (at least 1s)")
}

// Validate reports the first setting that is not valid.
func (c Config) Validate() error {
	if c = c.withDefaults(); c.ReservationTTL < time.Second {
		return reservationTTLSetting.Errorf(c.ReservationTTL, "want at least 1s")
	}
	return nil
}

// ValidateStandalone is Validate for havipd, which has no ipamd in its process: it also
// requires IpamAddr.
func (c Config) ValidateStandalone() error {
	if c.IpamAddr == "" {
		return ipamAddrSetting.Errorf(c.IpamAddr, "required: havipd calls ipamd there")
	}
	return c.Validate()
}

// NewModule checks cfg and returns the HAVIP service. It reaches ipamd at cfg.IpamAddr or, when
// that is empty, in its own process.
func NewModule(cfg Config) (service.Module, error) {
	if err := cfg.Validate(); err != nil {
		return service.Module{}, err
	}
	cfg = cfg.withDefaults()
	return service.Module{
		Name: "havip",
		Start: func(ctx context.Context, deps service.Deps) (func(grpc.ServiceRegistrar), error) {
			conn := deps.Local // without IpamAddr, ipamd must run in this process
			if cfg.IpamAddr != "" {
				cc, err := grpcclient.NewClient(cfg.IpamAddr, deps.Dial...) // a name (round-robin over what it resolves to) or a list
				if err != nil {
					return nil, fmt.Errorf("ipamd at %s: %w", cfg.IpamAddr, err)
				}
				context.AfterFunc(ctx, func() { _ = cc.Close() })
				conn = cc
			}
			st := store.New(deps.Etcd, havipcache.Of(deps), ownercache.Of(deps), deps.Log)
			if err := st.Start(ctx); err != nil {
				return nil, err
			}
			srv := server.New(st, inventory.New(conn), cfg.ReservationTTL)
			return func(r grpc.ServiceRegistrar) { havipv1.RegisterHaVipServiceServer(r, srv) }, nil
		},
	}, nil
}
