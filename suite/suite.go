// Package suite runs every HAVIP service in one process, on one gRPC address, over an embedded etcd.
package suite

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/openhavip/havip/platform/etcdx"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tracing"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/eip"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

// Config is where the suite listens and keeps its data.
type Config struct {
	// GRPCAddr serves every gRPC service (HAVIP_GRPC_ADDR, default 127.0.0.1:50051).
	GRPCAddr string
	// EtcdAddr is the embedded etcd's client address (HAVIP_ETCD_ADDR, default 127.0.0.1:0).
	EtcdAddr string
	// DataDir keeps etcd's data across restarts (HAVIP_DATA_DIR).
	DataDir string
	// UnsafeNoFsync skips fsync in etcd: for throwaway data in tests only.
	UnsafeNoFsync bool
}

// Modules are the services the suite serves.
var Modules = []service.Module{ipam.Module, havip.Module, arpbroker.Module, eip.Module}

// Ready describes a running suite.
type Ready struct {
	GRPCAddr     string
	EtcdEndpoint string
}

// Run serves the suite until ctx ends. It prints where it listens to out and, once serving,
// calls ready (if not nil).
func Run(ctx context.Context, cfg Config, log *slog.Logger, out io.Writer, ready func(Ready)) error {
	shutdown, err := tracing.Setup(ctx, "havip-suite")
	if err != nil {
		return err
	}
	defer func() { _ = shutdown(context.Background()) }()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	e, err := etcdx.StartEmbedded(ctx, etcdx.EmbeddedOptions{Dir: cfg.DataDir + "/etcd", ClientAddr: cfg.EtcdAddr, UnsafeNoFsync: cfg.UnsafeNoFsync})
	if err != nil {
		return err
	}
	defer e.Close()
	cli, err := etcdx.Connect(ctx, []string{e.Endpoint})
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.GRPCAddr, err)
	}
	fmt.Fprintf(out, "havip suite: gRPC on %s, embedded etcd on %s, data in %s\n", lis.Addr(), e.Endpoint, cfg.DataDir)
	for _, m := range Modules {
		fmt.Fprintf(out, "  service %s\n", m.Name)
	}
	if ready != nil {
		ready(Ready{GRPCAddr: lis.Addr().String(), EtcdEndpoint: e.Endpoint})
	}
	return service.Serve(ctx, log, lis, cli, Modules...)
}
