// Package havip wires the HAVIP service (havip.v1.HaVipService) into a process.
package havip

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"

	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tracing"
	"github.com/openhavip/havip/services/havip/inventory"
	"github.com/openhavip/havip/services/havip/server"
	"github.com/openhavip/havip/services/havip/store"
)

// DefaultReservationTTL is how long a VIP reserved by a create that crashed stays taken
// (env HAVIP_RESERVATION_TTL).
const DefaultReservationTTL = 30 * time.Second

// Module is the HAVIP service. It reaches ipamd at HAVIP_IPAM_ADDR, or, when that is unset
// (the one-process suite), in its own process with no network hop.
var Module = service.Module{
	Name: "havip",
	Start: func(ctx context.Context, deps service.Deps) (func(grpc.ServiceRegistrar), error) {
		ttl := DefaultReservationTTL
		if v := os.Getenv("HAVIP_RESERVATION_TTL"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second {
				return nil, fmt.Errorf("HAVIP_RESERVATION_TTL=%q: want a duration of at least 1s", v)
			}
			ttl = d
		}
		conn := deps.Local // without HAVIP_IPAM_ADDR, ipamd must run in this process
		if addr := os.Getenv("HAVIP_IPAM_ADDR"); addr != "" {
			cc, err := grpc.NewClient(addr, append(tracing.ClientOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
			if err != nil {
				return nil, fmt.Errorf("ipamd at %s: %w", addr, err)
			}
			context.AfterFunc(ctx, func() { _ = cc.Close() })
			conn = cc
		}
		st := store.New(deps.Etcd, deps.Log)
		if err := st.Start(ctx); err != nil {
			return nil, err
		}
		srv := server.New(st, inventory.New(conn), ttl)
		return func(r grpc.ServiceRegistrar) { havipv1.RegisterHaVipServiceServer(r, srv) }, nil
	},
}
