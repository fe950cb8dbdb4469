package main

import (
	"flag"
	"testing"

	"github.com/openhavip/havip/platform/config/configtest"
	"github.com/openhavip/havip/platform/mtls"
)

// TestFlags: natd's -h lists every setting, each with its variable and default.
func TestFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("natd", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	configtest.Check(t, fs, nil, &cfg)
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{EipAddr: "e:1", Table: "t", VPC: "vpc-11111111", Underlay: map[string]string{"h1": "192.168.0.1"}, TLS: mtls.Config{CA: "ca.crt", Cert: "n.crt", Key: "n.key"}}
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{name: "valid", change: func(*Config) {}},
		{name: "no eipd", change: func(c *Config) { c.EipAddr = "" }, want: `-eip (HAVIP_EIP_ADDR) = "": required`},
		{name: "no table", change: func(c *Config) { c.Table = "" }, want: `-table (HAVIP_NATD_TABLE) = "": required`},
		{name: "no VPC", change: func(c *Config) { c.VPC = "" }, want: `-vpc (HAVIP_NATD_VPC) = "": required: a VPC ID (vpc-xxxxxxxx)`},
		{name: "not a VPC", change: func(c *Config) { c.VPC = "subnet-11111111" }, want: `-vpc (HAVIP_NATD_VPC) = "subnet-11111111": required: a VPC ID (vpc-xxxxxxxx)`},
		{name: "underlay not an address", change: func(c *Config) { c.Underlay = map[string]string{"h2": "x"} }, want: `-underlay (HAVIP_NATD_UNDERLAY) = "h2=x": host h2: "x" is not an IPv4 address`},
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
