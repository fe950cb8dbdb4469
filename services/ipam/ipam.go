// Package ipam wires the IPAM service (ipam.v1.IpamService) into a process.
package ipam

import (
	"context"

	"google.golang.org/grpc"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/ipam/server"
	"github.com/openhavip/havip/services/ipam/store"
)

// Module is the IPAM service, ready to be served. It has no settings of its own: ipamd reads
// only the common ones (service.Config).
var Module = service.Module{
	Name: "ipam",
	Start: func(ctx context.Context, deps service.Deps) (func(grpc.ServiceRegistrar), error) {
		st := store.New(deps.Etcd, deps.Log)
		if err := st.Start(ctx); err != nil {
			return nil, err
		}
		srv := server.New(st)
		return func(r grpc.ServiceRegistrar) { ipamv1.RegisterIpamServiceServer(r, srv) }, nil
	},
}
