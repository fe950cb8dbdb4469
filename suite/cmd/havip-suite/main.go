// Command havip-suite runs the whole HAVIP control plane in one process on an embedded etcd.
package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/suite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("havip-suite", flag.ExitOnError)
	var cfg suite.Config
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", config.Env("HAVIP_GRPC_ADDR", "127.0.0.1:50051"), "address of every gRPC service (env HAVIP_GRPC_ADDR)")
	fs.StringVar(&cfg.EtcdAddr, "etcd-addr", config.Env("HAVIP_ETCD_ADDR", "127.0.0.1:0"), "client address of the embedded etcd (env HAVIP_ETCD_ADDR)")
	fs.StringVar(&cfg.DataDir, "data-dir", config.Env("HAVIP_DATA_DIR", ".havip-data"), "directory keeping the data across restarts (env HAVIP_DATA_DIR)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", config.Env("HAVIP_HTTP_ADDR", "127.0.0.1:8080"), "address of the REST gateway (env HAVIP_HTTP_ADDR)")
	fs.StringVar(&cfg.KeysFile, "keys", config.Env("HAVIP_API_KEYS_FILE", ""), "the gateway's API keys file; empty: a fresh key for acct-demo at each start (env HAVIP_API_KEYS_FILE)")
	level := fs.String("log-level", config.Env("HAVIP_LOG_LEVEL", "info"), "debug, info, warn or error (env HAVIP_LOG_LEVEL)")
	_ = fs.Parse(os.Args[1:])
	log := logging.New(os.Stderr, *level, "havip-suite")
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
