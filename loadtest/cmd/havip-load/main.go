// Command havip-load runs the ghz load scenarios against a running control plane (make run, or the compose stack) and prints one table.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/openhavip/havip/loadtest/creds"
	"github.com/openhavip/havip/loadtest/driver"
	"github.com/openhavip/havip/loadtest/report"
	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/logging"
)

// Config is the command's settings.
type Config struct {
	// Target is every service's gRPC address (-target, HAVIP_LOAD_TARGET); IpamTarget,
	// HaVipTarget, EipTarget and ArpTarget override it per service.
	Target                                        string
	IpamTarget, HaVipTarget, EipTarget, ArpTarget string
	// APIKey is the tenant's key (-api-key, HAVIP_LOAD_API_KEY).
	APIKey string
	// Certs is the certificates directory (-certs, HAVIP_LOAD_CERTS; see creds.Resolve).
	Certs string
	// Ghz is the ghz binary (-ghz, HAVIP_LOAD_GHZ).
	Ghz string
	// The sizes of the run (driver.Config).
	Requests, Concurrency, Pairs, AllocRound, ArpHaVips, DescribeHaVips int64
	// Log is the logging setting.
	Log logging.Config
}

var (
	targetSetting      = config.Setting{Flag: "target", Env: "HAVIP_LOAD_TARGET"}
	ipamSetting        = config.Setting{Flag: "ipam-target", Env: "HAVIP_LOAD_IPAM_TARGET"}
	havipSetting       = config.Setting{Flag: "havip-target", Env: "HAVIP_LOAD_HAVIP_TARGET"}
	eipSetting         = config.Setting{Flag: "eip-target", Env: "HAVIP_LOAD_EIP_TARGET"}
	arpSetting         = config.Setting{Flag: "arp-target", Env: "HAVIP_LOAD_ARP_TARGET"}
	keySetting         = config.Setting{Flag: "api-key", Env: "HAVIP_LOAD_API_KEY"}
	certsSetting       = config.Setting{Flag: "certs", Env: "HAVIP_LOAD_CERTS"}
	ghzSetting         = config.Setting{Flag: "ghz", Env: "HAVIP_LOAD_GHZ"}
	requestsSetting    = config.Setting{Flag: "requests", Env: "HAVIP_LOAD_REQUESTS"}
	concurrencySetting = config.Setting{Flag: "concurrency", Env: "HAVIP_LOAD_CONCURRENCY"}
	pairsSetting       = config.Setting{Flag: "pairs", Env: "HAVIP_LOAD_PAIRS"}
	allocSetting       = config.Setting{Flag: "alloc-round", Env: "HAVIP_LOAD_ALLOC_ROUND"}
	arpHaVipsSetting   = config.Setting{Flag: "arp-havips", Env: "HAVIP_LOAD_ARP_HAVIPS"}
	describeSetting    = config.Setting{Flag: "describe-havips", Env: "HAVIP_LOAD_DESCRIBE_HAVIPS"}
)

// RegisterFlags registers every setting on fs, with its default.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := driver.Defaults
	c.Target, c.Certs, c.Ghz = "127.0.0.1:50051", ".havip-data/certs", "bin/ghz"
	c.Requests, c.Concurrency, c.Pairs = int64(d.Requests), int64(d.Concurrency), int64(d.Pairs)
	c.AllocRound, c.ArpHaVips, c.DescribeHaVips = int64(d.AllocRound), int64(d.ArpHaVips), int64(d.DescribeSet)
	config.String(fs, &c.Target, targetSetting, "gRPC address of every service (make run's), host:port")
	config.String(fs, &c.IpamTarget, ipamSetting, "gRPC address of ipamd, when not -target (compose: 127.0.0.1:50051)")
	config.String(fs, &c.HaVipTarget, havipSetting, "gRPC address of havipd, when not -target (compose: 127.0.0.1:50052)")
	config.String(fs, &c.EipTarget, eipSetting, "gRPC address of eipd, when not -target (compose: 127.0.0.1:50054)")
	config.String(fs, &c.ArpTarget, arpSetting, "gRPC address of arpbrokerd, when not -target (compose: 127.0.0.1:50053)")
	config.String(fs, &c.APIKey, keySetting, "the tenant's API key (make run and make compose-up print one)")
	config.String(fs, &c.Certs, certsSetting, "certificates directory: with the CA's key (make run's), a client and an agent certificate are issued for the run;\nwithout (make compose-up's build/certs), operator.crt and the first agent-<host>.crt are used")
	config.String(fs, &c.Ghz, ghzSetting, "the ghz binary (make ghz installs the pinned one)")
	config.Int64(fs, &c.Requests, requestsSetting, "requests of each scenario")
	config.Int64(fs, &c.Concurrency, concurrencySetting, "ghz workers of each scenario")
	config.Int64(fs, &c.Pairs, pairsSetting, "HAVIP and EIP pairs the associate/disassociate rounds bind and unbind (each once a round)")
	config.Int64(fs, &c.AllocRound, allocSetting, "EIPs allocated before they are released again (the public pool is finite)")
	config.Int64(fs, &c.ArpHaVips, arpHaVipsSetting, "HAVIPs the ARP burst announces")
	config.Int64(fs, &c.DescribeHaVips, describeSetting, "HAVIPs the Describe scenarios read")
	c.Log.RegisterFlags(fs)
}

// Validate reports the first setting that is not valid (the driver checks the sizes' upper
// bounds and the files).
func (c *Config) Validate() error {
	if c.APIKey == "" {
		return keySetting.Errorf(c.APIKey, "required: make run prints one (\"API key for account ...\")")
	}
	for _, a := range []struct {
		s    config.Setting
		addr string
	}{{targetSetting, c.Target}, {ipamSetting, c.IpamTarget}, {havipSetting, c.HaVipTarget}, {eipSetting, c.EipTarget}, {arpSetting, c.ArpTarget}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil && (a.addr != "" || a.s == targetSetting) {
			return a.s.Errorf(a.addr, "want host:port")
		}
	}
	for _, n := range []struct {
		s config.Setting
		v int64
	}{{requestsSetting, c.Requests}, {concurrencySetting, c.Concurrency}, {pairsSetting, c.Pairs}, {allocSetting, c.AllocRound}, {arpHaVipsSetting, c.ArpHaVips}, {describeSetting, c.DescribeHaVips}} {
		if n.v < 1 {
			return n.s.Errorf(n.v, "want at least 1")
		}
	}
	return c.Log.Validate()
}

func main() {
	fs := config.NewFlagSet("havip-load", "havip-load runs the ghz load scenarios (CreateHaVip, DescribeHaVips by ID and by filter,\nAllocateAddresses, HaVipAssociateAddressIp/HaVipDisassociateAddressIp pairs, a burst of ARP reports)\nagainst a running control plane: it makes their fixtures through the API, runs ghz per scenario,\nremoves what it made, and prints one table. It exits 1 when a request failed.")
	var c Config
	c.RegisterFlags(fs)
	config.Load(fs, os.Args[1:], &c)
	log := logging.New(os.Stderr, c.Log.Level, "havip-load")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { // the first signal stops the run and removes the fixtures; a second one kills
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, c, log); err != nil {
		log.Error("load run failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c Config, log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "havip-load-certs-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	tenant, agent, err := creds.Resolve(c.Certs, dir, "havip-load-"+strings.ToLower(rand.Text()[:8]))
	if err != nil {
		return fmt.Errorf("%s: %w", certsSetting, err)
	}
	or := func(v string) string {
		if v == "" {
			return c.Target
		}
		return v
	}
	cfg := driver.Config{
		Targets: driver.Targets{Ipam: or(c.IpamTarget), HaVip: or(c.HaVipTarget), Eip: or(c.EipTarget), ArpBroker: or(c.ArpTarget)},
		APIKey:  c.APIKey, Tenant: tenant, Agent: agent, Ghz: c.Ghz,
		Requests: int(c.Requests), Concurrency: int(c.Concurrency), Pairs: int(c.Pairs),
		AllocRound: int(c.AllocRound), ArpHaVips: int(c.ArpHaVips), DescribeSet: int(c.DescribeHaVips),
	}
	rows, err := driver.Run(ctx, cfg, log)
	if len(rows) > 0 {
		if werr := report.Write(os.Stdout, rows); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		return err
	}
	failed := 0
	for _, r := range rows {
		failed += r.Errors
	}
	if failed > 0 {
		return fmt.Errorf("%d requests failed (the log above lists their errors)", failed)
	}
	return nil
}
