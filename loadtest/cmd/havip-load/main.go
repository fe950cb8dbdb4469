// Command havip-load runs the ghz load scenarios against a running control plane (make run, or the compose stack) and prints one table.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
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

// settings are the command's flags.
type settings struct {
	target                          string
	ipam, havip, eip, arpbroker     string
	apiKey, certs, ghz              string
	requests, concurrency, pairs    int64
	allocRound, arpHaVips, describe int64
	log                             logging.Config
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

func (s *settings) register(fs *flag.FlagSet) {
	d := driver.Defaults
	s.target, s.certs, s.ghz = "127.0.0.1:50051", ".havip-data/certs", "bin/ghz"
	s.requests, s.concurrency, s.pairs = int64(d.Requests), int64(d.Concurrency), int64(d.Pairs)
	s.allocRound, s.arpHaVips, s.describe = int64(d.AllocRound), int64(d.ArpHaVips), int64(d.DescribeSet)
	config.String(fs, &s.target, targetSetting, "gRPC address of every service (make run's), host:port")
	config.String(fs, &s.ipam, ipamSetting, "gRPC address of ipamd, when not -target (compose: 127.0.0.1:50051)")
	config.String(fs, &s.havip, havipSetting, "gRPC address of havipd, when not -target (compose: 127.0.0.1:50052)")
	config.String(fs, &s.eip, eipSetting, "gRPC address of eipd, when not -target (compose: 127.0.0.1:50054)")
	config.String(fs, &s.arpbroker, arpSetting, "gRPC address of arpbrokerd, when not -target (compose: 127.0.0.1:50053)")
	config.String(fs, &s.apiKey, keySetting, "the tenant's API key (make run and make compose-up print one)")
	config.String(fs, &s.certs, certsSetting, "certificates directory: with the CA's key (make run's), a client and an agent certificate are issued for the run;\nwithout (make compose-up's build/certs), operator.crt and the first agent-<host>.crt are used")
	config.String(fs, &s.ghz, ghzSetting, "the ghz binary (make ghz installs the pinned one)")
	config.Int64(fs, &s.requests, requestsSetting, "requests of each scenario")
	config.Int64(fs, &s.concurrency, concurrencySetting, "ghz workers of each scenario")
	config.Int64(fs, &s.pairs, pairsSetting, "HAVIP and EIP pairs the associate/disassociate rounds bind and unbind (each once a round)")
	config.Int64(fs, &s.allocRound, allocSetting, "EIPs allocated before they are released again (the public pool is finite)")
	config.Int64(fs, &s.arpHaVips, arpHaVipsSetting, "HAVIPs the ARP burst announces")
	config.Int64(fs, &s.describe, describeSetting, "HAVIPs the Describe scenarios read")
	s.log.RegisterFlags(fs)
}

// Validate checks what the driver does not: that an API key is given.
func (s *settings) Validate() error {
	if s.apiKey == "" {
		return keySetting.Errorf(s.apiKey, "required: make run prints it (\"API key for account ...\")")
	}
	return s.log.Validate()
}

func main() {
	fs := config.NewFlagSet("havip-load", "havip-load runs the ghz load scenarios (CreateHaVip, DescribeHaVips by ID and by filter,\nAllocateAddresses, HaVipAssociateAddressIp/HaVipDisassociateAddressIp pairs, a burst of ARP reports)\nagainst a running control plane: it makes their fixtures through the API, runs ghz per scenario,\nremoves what it made, and prints one table. It exits 1 when a request failed.")
	var s settings
	s.register(fs)
	config.Load(fs, os.Args[1:], &s)
	log := logging.New(os.Stderr, s.log.Level, "havip-load")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { // the first signal stops the run and removes the fixtures; a second one kills
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, s); err != nil {
		log.Error("load run failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, s settings) error {
	dir, err := os.MkdirTemp("", "havip-load-certs-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	tenant, agent, err := creds.Resolve(s.certs, dir, "havip-load-"+strings.ToLower(rand.Text()[:8]))
	if err != nil {
		return fmt.Errorf("%s: %w", certsSetting, err)
	}
	or := func(v string) string {
		if v == "" {
			return s.target
		}
		return v
	}
	cfg := driver.Config{
		Targets: driver.Targets{Ipam: or(s.ipam), HaVip: or(s.havip), Eip: or(s.eip), ArpBroker: or(s.arpbroker)},
		APIKey:  s.apiKey, Tenant: tenant, Agent: agent, Ghz: s.ghz,
		Requests: int(s.requests), Concurrency: int(s.concurrency), Pairs: int(s.pairs),
		AllocRound: int(s.allocRound), ArpHaVips: int(s.arpHaVips), DescribeSet: int(s.describe),
	}
	rows, err := driver.Run(ctx, cfg, logging.New(os.Stderr, s.log.Level, "havip-load"))
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
