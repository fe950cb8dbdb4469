// Command havip-suite runs the whole HAVIP control plane in one process on an embedded etcd (or an external one).
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/gcfloor"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/platform/tracing"
	"github.com/openhavip/havip/suite"
)

func main() {
	fs := config.NewFlagSet("havip-suite", "havip-suite runs the whole HAVIP control plane in one process: every gRPC service on one\naddress, the REST gateway, and an embedded etcd (or an external one: -etcd).", tracing.EnvHelp)
	var cfg suite.Config
	cfg.RegisterFlags(fs)
	config.Load(fs, os.Args[1:], &cfg)
	gcfloor.Set(gcfloor.Size)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := logging.New(os.Stderr, cfg.Log.Level, "havip-suite")
	err := suite.Run(ctx, cfg, log, os.Stdout, nil)
	switch {
	case err == nil: // stopped by SIGINT or SIGTERM, gracefully: exit 0
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		log.Info("stopped while starting") // as clean a stop as one after serving
	default:
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}
