// Command natd is the EIP gateway: it follows eipd's NAT rules and programs DNAT of each EIP to the private IP behind it, routed to the owner's host.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/grpcclient"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/tracing"
	"github.com/openhavip/havip/services/eip/natgw"
)

// Config is natd's settings.
type Config struct {
	// EipAddr is eipd's gRPC address, or a comma-separated list of its replicas' addresses
	// (-eip, HAVIP_EIP_ADDR).
	EipAddr string
	// Underlay gives every host's underlay address, `host-id=IP` (-underlay, HAVIP_NATD_UNDERLAY).
	Underlay map[string]string
	// Table is the nftables table natd owns (-table, HAVIP_NATD_TABLE).
	Table string
	// VPC is the VPC whose fabric natd forwards to (-vpc, HAVIP_NATD_VPC; required): an EIP
	// whose backend is in another VPC is dropped, since private IPs repeat across VPCs.
	VPC string
	// TLS names natd's certificate files (-ca, -cert, -key; default certs/ca.crt,
	// certs/dataplane-natd.crt, certs/dataplane-natd.key): havip-cert create-dataplane natd.
	TLS mtls.Config
	// Log is the logging setting.
	Log logging.Config
}

var (
	eipSetting      = config.Setting{Flag: "eip", Env: "HAVIP_EIP_ADDR"}
	underlaySetting = config.Setting{Flag: "underlay", Env: "HAVIP_NATD_UNDERLAY"}
	tableSetting    = config.Setting{Flag: "table", Env: "HAVIP_NATD_TABLE"}
	vpcSetting      = config.Setting{Flag: "vpc", Env: "HAVIP_NATD_VPC"}
)

// RegisterFlags registers every setting on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	if c.EipAddr == "" {
		c.EipAddr = "127.0.0.1:50051"
	}
	if c.Underlay == nil {
		c.Underlay = map[string]string{}
	}
	if c.Table == "" {
		c.Table = natgw.DefaultTable
	}
	config.String(fs, &c.EipAddr, eipSetting, "gRPC address of eipd, or a comma-separated list of its replicas' addresses (called round-robin)")
	config.Hosts(fs, c.Underlay, underlaySetting, "a host and its underlay address, `host-id=IP`: repeat the flag for each host, or comma-separate them")
	config.String(fs, &c.Table, tableSetting, "the nftables table (family ip) natd owns and replaces")
	config.String(fs, &c.VPC, vpcSetting, "the VPC whose fabric natd forwards to (required): an EIP whose backend is in another VPC is dropped")
	c.TLS.RegisterFlags(fs, "dataplane-natd")
	c.Log.RegisterFlags(fs)
}

// Validate reports the first setting that is not valid.
func (c Config) Validate() error {
	if c.EipAddr == "" {
		return eipSetting.Errorf(c.EipAddr, "required")
	}
	if c.Table == "" {
		return tableSetting.Errorf(c.Table, "required")
	}
	if !ids.Valid(ids.Vpc, c.VPC) {
		return vpcSetting.Errorf(c.VPC, "required: a VPC ID (vpc-xxxxxxxx)")
	}
	if _, err := config.HostAddrs(c.Underlay, underlaySetting); err != nil {
		return err
	}
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	return c.Log.Validate()
}

func main() {
	fs := config.NewFlagSet("natd", "natd is the EIP gateway: it follows eipd's NAT rules and programs, in this host's network namespace,\nDNAT of each EIP to the private IP behind it (replies translated back), a route to the owner's\nhost, and a drop for an EIP with no backend.", tracing.EnvHelp)
	var cfg Config
	cfg.RegisterFlags(fs)
	config.Load(fs, os.Args[1:], &cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := logging.New(os.Stderr, cfg.Log.Level, "natd")
	hosts, _ := config.HostAddrs(cfg.Underlay, underlaySetting) // checked by Validate
	src, err := cfg.TLS.Load(log)
	if err != nil {
		log.Error("certificate", "err", err)
		os.Exit(1)
	}
	conn, err := grpcclient.NewClient(cfg.EipAddr, grpcclient.Options(src)...)
	if err != nil {
		log.Error("eipd", "err", err)
		os.Exit(1)
	}
	defer conn.Close()
	nft, err := nftables.New()
	if err != nil {
		log.Error("nftables", "err", err)
		os.Exit(1)
	}
	h, err := netlink.NewHandle()
	if err != nil {
		log.Error("netlink", "err", err)
		os.Exit(1)
	}
	defer h.Close()
	g := natgw.New(natgw.Config{VPC: cfg.VPC, Hosts: hosts, Table: cfg.Table}, nft, h, log)
	if err := g.Run(ctx, eipv1.NewNatRuleServiceClient(conn)); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}
