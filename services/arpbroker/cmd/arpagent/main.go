// Command arpagent is the host agent: it reports the gratuitous ARP of the host's VM ports to arpbrokerd.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/grpcclient"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/tracing"
	"github.com/openhavip/havip/services/arpbroker/agent"
	"github.com/openhavip/havip/services/arpbroker/hostroute"
)

// Config is arpagent's settings.
type Config struct {
	// Agent describes the host: -agent-id (HAVIP_AGENT_ID, default agent-<hostname>), -host-id
	// (HAVIP_HOST_ID, default the host named by the agent's certificate, or the hostname in
	// plaintext), -session-ttl (HAVIP_AGENT_SESSION_TTL, default 10s) and -port
	// (HAVIP_AGENT_PORTS).
	Agent agent.Config
	// BrokerAddr is arpbrokerd's gRPC address, or a comma-separated list of its replicas'
	// addresses, called round-robin (-broker, HAVIP_BROKER_ADDR).
	BrokerAddr string
	// Netns is the network namespace holding the VM ports, a name under /var/run/netns or a
	// path (-netns, HAVIP_AGENT_NETNS); empty: the agent's own. The agent calls the broker from
	// its own namespace: for a host simulated in a namespace.
	Netns string
	// TLS names the agent's certificate files (-ca, -cert, -key; default certs/ca.crt,
	// certs/agent.crt, certs/agent.key): an agent certificate (havip-cert create-agent <host>).
	TLS mtls.Config
	// Routes turns on route programming (-routes, HAVIP_AGENT_ROUTES): the agent follows the
	// ownerships and routes each VIP's /32 to the owner ENI's port on this host, or via the
	// owner's host (-underlay) on another.
	Routes bool
	// Underlay gives every host's underlay address, `host-id=IP` (-underlay, HAVIP_AGENT_UNDERLAY).
	Underlay map[string]string
	// VPC is the VPC whose fabric the routes serve (-vpc, HAVIP_AGENT_VPC; required with
	// -routes): other VPCs' ownerships are ignored, since their VIPs may be the same addresses.
	VPC string
	// Log is the logging setting.
	Log logging.Config
}

var (
	agentIDSetting    = config.Setting{Flag: "agent-id", Env: "HAVIP_AGENT_ID"}
	hostIDSetting     = config.Setting{Flag: "host-id", Env: "HAVIP_HOST_ID"}
	sessionTTLSetting = config.Setting{Flag: "session-ttl", Env: "HAVIP_AGENT_SESSION_TTL"}
	portsSetting      = config.Setting{Flag: "port", Env: "HAVIP_AGENT_PORTS"}
	brokerSetting     = config.Setting{Flag: "broker", Env: "HAVIP_BROKER_ADDR"}
	netnsSetting      = config.Setting{Flag: "netns", Env: "HAVIP_AGENT_NETNS"}
	routesSetting     = config.Setting{Flag: "routes", Env: "HAVIP_AGENT_ROUTES"}
	underlaySetting   = config.Setting{Flag: "underlay", Env: "HAVIP_AGENT_UNDERLAY"}
	vpcSetting        = config.Setting{Flag: "vpc", Env: "HAVIP_AGENT_VPC"}
)

// RegisterFlags registers every setting on fs; the defaults name host, the machine's hostname.
func (c *Config) RegisterFlags(fs *flag.FlagSet, host string) {
	if c.Agent.AgentID == "" {
		c.Agent.AgentID = "agent-" + host
	}
	if c.Agent.SessionTTL == 0 {
		c.Agent.SessionTTL = 10 * time.Second
	}
	if c.Agent.Ports == nil {
		c.Agent.Ports = map[string]string{}
	}
	if c.Underlay == nil {
		c.Underlay = map[string]string{}
	}
	if c.BrokerAddr == "" {
		c.BrokerAddr = "127.0.0.1:50051"
	}
	config.String(fs, &c.Agent.AgentID, agentIDSetting, "this agent's ID")
	config.String(fs, &c.Agent.HostID, hostIDSetting, "the host's ID, as ipamd knows it (an instance's host_id); empty: the host the certificate names")
	config.Duration(fs, &c.Agent.SessionTTL, sessionTTLSetting, "session TTL, whole seconds: ownerships lapse this long after the agent dies")
	config.Var(fs, ports(c.Agent.Ports), portsSetting, "a VM port and its ENI, `ifname=eni-id`: repeat the flag for each port, or comma-separate them")
	config.String(fs, &c.BrokerAddr, brokerSetting, "gRPC address of arpbrokerd, or a comma-separated list of its replicas' addresses (called round-robin)")
	config.String(fs, &c.Netns, netnsSetting, "network namespace of the VM ports (a name under /var/run/netns, or a path), for a simulated host; empty: the agent's own")
	config.Bool(fs, &c.Routes, routesSetting, "program the VIP routes: each VIP's /32 to the owner's port on this host, via the owner's host (-underlay) on another")
	config.Hosts(fs, c.Underlay, underlaySetting, "a host and its underlay address, `host-id=IP`: repeat the flag for each host, or comma-separate them")
	config.String(fs, &c.VPC, vpcSetting, "the VPC whose VIPs -routes programs (required with -routes): other VPCs' HAVIPs may use the same addresses")
	c.TLS.RegisterFlags(fs, "agent")
	c.Log.RegisterFlags(fs)
}

// Validate reports the first setting that is not valid.
func (c Config) Validate() error {
	switch {
	case c.Agent.AgentID == "":
		return agentIDSetting.Errorf(c.Agent.AgentID, "required")
	case c.Agent.SessionTTL < time.Second || c.Agent.SessionTTL%time.Second != 0:
		return sessionTTLSetting.Errorf(c.Agent.SessionTTL, "want whole seconds, at least 1s")
	case c.BrokerAddr == "":
		return brokerSetting.Errorf(c.BrokerAddr, "required")
	case c.Routes && c.VPC == "":
		return vpcSetting.Errorf(c.VPC, "required with -routes: the routes serve one VPC's fabric")
	case c.VPC != "" && !ids.Valid(ids.Vpc, c.VPC):
		return vpcSetting.Errorf(c.VPC, "not a VPC ID (vpc-xxxxxxxx)")
	}
	if _, err := config.HostAddrs(c.Underlay, underlaySetting); err != nil {
		return err
	}
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	return c.Log.Validate()
}

// resolveHost fills in the host ID: the one the agent's certificate names (which must agree
// with -host-id when that is given), or hostname in plaintext.
func (c *Config) resolveHost(src *mtls.Source, hostname string) error {
	if src == nil {
		if c.Agent.HostID == "" {
			c.Agent.HostID = hostname
		}
		return nil
	}
	id := src.Identity()
	if id.Kind != identity.Agent {
		return fmt.Errorf("%s is not an agent's certificate (%s): make one with havip-cert create-agent <host-id>", src.Files().Cert, id)
	}
	if c.Agent.HostID != "" && c.Agent.HostID != id.Name {
		return hostIDSetting.Errorf(c.Agent.HostID, "the certificate %s is for host %q", src.Files().Cert, id.Name)
	}
	c.Agent.HostID = id.Name
	return nil
}

// netnsPath is the file of the network namespace -netns names: a name is one `ip netns add` made.
func netnsPath(netns string) string {
	if strings.Contains(netns, "/") {
		return netns
	}
	return "/var/run/netns/" + netns
}

// netlinkHandle is a netlink handle in the namespace -netns names, or in the agent's own.
func netlinkHandle(netns string) (*netlink.Handle, error) {
	if netns == "" {
		return netlink.NewHandle()
	}
	ns, err := vnetns.GetFromPath(netnsPath(netns))
	if err != nil {
		return nil, err
	}
	defer func() { _ = ns.Close() }()
	return netlink.NewHandleAt(ns)
}

// ports collects -port ifname=eni-id flags.
type ports map[string]string

func (p ports) String() string {
	var out []string
	for ifname, eni := range p {
		out = append(out, ifname+"="+eni)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (p ports) Set(v string) error {
	for _, part := range config.Split(v) {
		ifname, eni, ok := strings.Cut(part, "=")
		if !ok || ifname == "" || eni == "" {
			return fmt.Errorf("want ifname=eni-id, got %q", part)
		}
		if _, dup := p[ifname]; dup {
			return fmt.Errorf("port %s given twice", ifname)
		}
		for other, e := range p {
			if e == eni {
				return fmt.Errorf("%s is behind both %s and %s: an ENI has one port", eni, other, ifname)
			}
		}
		p[ifname] = eni
	}
	return nil
}

func (p ports) Get() any { return map[string]string(p) }

func main() {
	fs := config.NewFlagSet("arpagent", "arpagent is the host agent: it reports the gratuitous ARP of the host's VM ports to arpbrokerd,\nholds the host's session and, with -routes, routes each VIP to its owner.", tracing.EnvHelp)
	var cfg Config
	host, _ := os.Hostname()
	cfg.RegisterFlags(fs, host)
	config.Load(fs, os.Args[1:], &cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := logging.New(os.Stderr, cfg.Log.Level, "arpagent")
	src, err := cfg.TLS.Load(log)
	if err != nil {
		log.Error("certificate", "err", err)
		os.Exit(1)
	}
	if err := cfg.resolveHost(src, host); err != nil {
		log.Error("certificate", "err", err)
		os.Exit(2)
	}
	conn, err := grpcclient.NewClient(cfg.BrokerAddr, grpcclient.Options(src)...) // round-robin over the replicas the name (or list) gives
	if err != nil {
		log.Error("broker", "err", err)
		os.Exit(1)
	}
	defer conn.Close()
	ag := agent.New(cfg.Agent, arpbrokerv1.NewArpBrokerServiceClient(conn), log)
	if cfg.Netns != "" {
		if err := ag.OpenIn(netnsPath(cfg.Netns)); err != nil {
			log.Error("ports", "netns", cfg.Netns, "err", err)
			os.Exit(1)
		}
	}
	if cfg.Routes {
		h, err := netlinkHandle(cfg.Netns)
		if err != nil {
			log.Error("routes", "netns", cfg.Netns, "err", err)
			os.Exit(1)
		}
		defer h.Close()
		hosts, _ := config.HostAddrs(cfg.Underlay, underlaySetting) // checked by Validate
		r := hostroute.New(hostroute.Config{HostID: cfg.Agent.HostID, VPC: cfg.VPC, Ports: cfg.Agent.Ports, Hosts: hosts}, h, log)
		go func() { _ = r.Run(ctx, arpbrokerv1.NewArpBrokerServiceClient(conn)) }()
	}
	if err := ag.Run(ctx); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}
