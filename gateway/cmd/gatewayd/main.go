// Command gatewayd serves the REST/JSON API of the HAVIP control plane in front of its gRPC services.
//
//	gatewayd                    serve (see -h for flags and their HAVIP_* variables)
//	gatewayd new-key <account>  print a new API key and the keys file line for it
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/openhavip/havip/gateway"
	"github.com/openhavip/havip/gateway/apikey"
	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/platform/tracing"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "new-key" {
		key := apikey.New()
		fmt.Printf("key: %s\nkeys file line: %s", key, apikey.Line(os.Args[2], key))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("gatewayd", flag.ExitOnError)
	addr := config.String(fs, "http-addr", "HAVIP_HTTP_ADDR", "127.0.0.1:8080", "address to serve HTTP on")
	backend := config.String(fs, "backend", "HAVIP_BACKEND_ADDR", "127.0.0.1:50051", "gRPC address of the services (each overridable below)")
	ipam := config.String(fs, "ipam-addr", "HAVIP_IPAM_ADDR", "", "gRPC address of ipam.v1.IpamService (default: -backend)")
	havip := config.String(fs, "havip-addr", "HAVIP_HAVIP_ADDR", "", "gRPC address of havip.v1.HaVipService (default: -backend)")
	eip := config.String(fs, "eip-addr", "HAVIP_EIP_ADDR", "", "gRPC address of eip.v1.EipService (default: -backend)")
	keysFile := config.String(fs, "keys", "HAVIP_API_KEYS_FILE", "api-keys", "keys file: lines of \"<account> sha256:<hex>\" (gatewayd new-key <account>)")
	maxBody := fs.Int64("max-body-bytes", 1<<20, "largest request body accepted")
	level := config.String(fs, "log-level", "HAVIP_LOG_LEVEL", "info", "debug, info, warn or error")
	_ = fs.Parse(os.Args[1:])
	log := logging.New(os.Stderr, *level, "gatewayd")
	or := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	err := func() error {
		shutdown, err := tracing.Setup(ctx, "gatewayd")
		if err != nil {
			return err
		}
		defer func() { _ = shutdown(context.Background()) }()
		keys, err := apikey.Load(*keysFile)
		if err != nil {
			return err
		}
		g, err := gateway.New(ctx, gateway.Config{IpamAddr: or(*ipam, *backend), HaVipAddr: or(*havip, *backend), EipAddr: or(*eip, *backend), Keys: keys, MaxBodyBytes: *maxBody, Log: log})
		if err != nil {
			return err
		}
		defer g.Close()
		lis, err := net.Listen("tcp", *addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", *addr, err)
		}
		log.Info("serving", "http", lis.Addr().String(), "keys", keys.Len())
		return g.Serve(ctx, lis, 10*time.Second)
	}()
	if err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}
