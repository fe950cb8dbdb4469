// Command havip-suite runs the whole HAVIP control plane in one process on an embedded etcd.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/platform/tracing"
	"github.com/openhavip/havip/suite"
)

func main() {
	fs := config.NewFlagSet("havip-suite", "havip-suite runs the whole HAVIP control plane in one process: every gRPC service on one\naddress, the REST gateway, and an embedded etcd.", tracing.EnvHelp)
	var cfg suite.Config
	cfg.RegisterFlags(fs)
	config.Load(fs, os.Args[1:], &cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := logging.New(os.Stderr, cfg.Log.Level, "havip-suite")
	if err := suite.Run(ctx, cfg, log, os.Stdout, nil); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}
