package service

import (
	"context"
	"io"
	"log/slog"

	"github.com/openhavip/havip/platform/healthcheck"
	"github.com/openhavip/havip/platform/mtls"
)

// Health asks the process that serves at cfg's -grpc-addr (reached on 127.0.0.1 when it listens
// on every address) for its gRPC health, over mTLS with cfg's certificate, the process's own: nil
// when it answers SERVING. The certificate must be valid for that host (havip-cert's default
// hosts, 127.0.0.1 and localhost, are).
func Health(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	addr, err := healthcheck.LocalAddr(cfg.GRPCAddr)
	if err != nil {
		return err
	}
	src, err := cfg.TLS.Load(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	return healthcheck.GRPC(ctx, addr, mtls.DialOption(src))
}
