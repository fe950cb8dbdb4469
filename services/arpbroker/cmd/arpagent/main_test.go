package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/config/configtest"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/services/arpbroker/agent"
)

// TestFlags: arpagent's -h lists every setting, each with its variable and default.
func TestFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("arpagent", flag.ContinueOnError)
	cfg.RegisterFlags(fs, "h1")
	configtest.Check(t, fs, nil, &cfg)
}

// TestPorts: -port repeats, and its variable (or one flag) takes a comma-separated list.
func TestPorts(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want map[string]string
		err  bool
	}{
		{name: "repeated", args: []string{"-port", "tap1=eni-a", "-port", "tap2=eni-b"}, want: map[string]string{"tap1": "eni-a", "tap2": "eni-b"}},
		{name: "variable", env: map[string]string{"HAVIP_AGENT_PORTS": "tap1=eni-a, tap2=eni-b"}, want: map[string]string{"tap1": "eni-a", "tap2": "eni-b"}},
		{name: "flag wins", args: []string{"-port=tap3=eni-c"}, env: map[string]string{"HAVIP_AGENT_PORTS": "tap1=eni-a"}, want: map[string]string{"tap3": "eni-c"}},
		{name: "no ENI", args: []string{"-port", "tap1"}, err: true},
		{name: "no ENI in the variable", env: map[string]string{"HAVIP_AGENT_PORTS": "tap1=eni-a,tap2="}, err: true},
		{name: "a port twice", args: []string{"-port", "tap1=eni-a", "-port", "tap1=eni-b"}, err: true},
		{name: "an ENI on two ports", args: []string{"-port", "tap1=eni-a,tap2=eni-a"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet("arpagent", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.RegisterFlags(fs, "h1")
			err := config.Parse(fs, tc.args, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if (err != nil) != tc.err {
				t.Fatalf("error: %v, want one: %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.want, cfg.Agent.Ports); err == nil && diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{Agent: agent.Config{AgentID: "a", HostID: "h", SessionTTL: 10 * time.Second}, BrokerAddr: "b:1", TLS: mtls.Config{CA: "ca.crt", Cert: "agent.crt", Key: "agent.key"}}
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{name: "valid", change: func(*Config) {}},
		{name: "no agent ID", change: func(c *Config) { c.Agent.AgentID = "" }, want: `-agent-id (HAVIP_AGENT_ID) = "": required`},
		{name: "no host ID: the certificate's", change: func(c *Config) { c.Agent.HostID = "" }},
		{name: "no certificate", change: func(c *Config) { c.TLS.Cert = "" }, want: `-cert (HAVIP_TLS_CERT) = "": required (or -insecure-plaintext for development)`},
		{name: "session TTL in part seconds", change: func(c *Config) { c.Agent.SessionTTL = 1500 * time.Millisecond }, want: "-session-ttl (HAVIP_AGENT_SESSION_TTL) = 1.5s: want whole seconds, at least 1s"},
		{name: "no broker", change: func(c *Config) { c.BrokerAddr = "" }, want: `-broker (HAVIP_BROKER_ADDR) = "": required`},
		{name: "underlay", change: func(c *Config) { c.Underlay = map[string]string{"h2": "192.168.0.2"} }},
		{name: "routes", change: func(c *Config) { c.Routes, c.VPC = true, "vpc-11111111" }},
		{name: "routes without a VPC", change: func(c *Config) { c.Routes = true }, want: `-vpc (HAVIP_AGENT_VPC) = "": required with -routes: the routes serve one VPC's fabric`},
		{name: "not a VPC", change: func(c *Config) { c.Routes, c.VPC = true, "vpc-1" }, want: `-vpc (HAVIP_AGENT_VPC) = "vpc-1": not a VPC ID (vpc-xxxxxxxx)`},
		{name: "underlay not an address", change: func(c *Config) { c.Underlay = map[string]string{"h2": "h2.example"} }, want: `-underlay (HAVIP_AGENT_UNDERLAY) = "h2=h2.example": host h2: "h2.example" is not an IPv4 address`},
		{name: "log level", change: func(c *Config) { c.Log.Level = "all" }, want: `-log-level (HAVIP_LOG_LEVEL) = "all": want debug, info, warn or error`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			got := ""
			if err := c.Validate(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestResolveHost: the host is the one the agent's certificate names; a -host-id naming another
// host, or a certificate that is not an agent's, stops the agent at start.
func TestResolveHost(t *testing.T) {
	agentSrc := mtlstest.Source(t, mtlstest.Agent("h1"))
	for _, tc := range []struct {
		name   string
		src    *mtls.Source
		hostID string
		want   string
		err    string
	}{
		{name: "from the certificate", src: agentSrc, want: "h1"},
		{name: "the same given", src: agentSrc, hostID: "h1", want: "h1"},
		{name: "another host given", src: agentSrc, hostID: "h2", err: `-host-id (HAVIP_HOST_ID) = "h2": the certificate`},
		{name: "not an agent's certificate", src: mtlstest.Source(t, mtlstest.Service), err: "is not an agent's certificate"},
		{name: "plaintext: the hostname", want: "myhost"},
		{name: "plaintext, given", hostID: "h3", want: "h3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Agent: agent.Config{HostID: tc.hostID}}
			err := c.resolveHost(tc.src, "myhost")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || c.Agent.HostID != tc.want {
				t.Errorf("host %q, error %v; want %q", c.Agent.HostID, err, tc.want)
			}
		})
	}
}
