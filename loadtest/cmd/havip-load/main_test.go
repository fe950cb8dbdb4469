package main

import (
	"flag"
	"testing"

	"github.com/openhavip/havip/platform/config/configtest"
)

// TestFlags: havip-load's -h lists every setting, each with its variable and default.
func TestFlags(t *testing.T) {
	t.Parallel()
	var c Config
	fs := flag.NewFlagSet("havip-load", flag.ContinueOnError)
	c.RegisterFlags(fs)
	configtest.Check(t, fs, nil, &c)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() Config {
		var c Config
		c.RegisterFlags(flag.NewFlagSet("havip-load", flag.ContinueOnError))
		c.APIKey = "havip_key"
		return c
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{name: "the defaults with a key", change: func(*Config) {}},
		{name: "per-service targets", change: func(c *Config) { c.HaVipTarget, c.ArpTarget = "127.0.0.1:50052", "localhost:50053" }},
		{name: "no key", change: func(c *Config) { c.APIKey = "" }, want: `-api-key (HAVIP_LOAD_API_KEY) = "": required: make run prints one ("API key for account ...")`},
		{name: "no target", change: func(c *Config) { c.Target = "" }, want: `-target (HAVIP_LOAD_TARGET) = "": want host:port`},
		{name: "bad eipd target", change: func(c *Config) { c.EipTarget = "eipd" }, want: `-eip-target (HAVIP_LOAD_EIP_TARGET) = "eipd": want host:port`},
		{name: "no requests", change: func(c *Config) { c.Requests = 0 }, want: `-requests (HAVIP_LOAD_REQUESTS) = 0: want at least 1`},
		{name: "negative concurrency", change: func(c *Config) { c.Concurrency = -1 }, want: `-concurrency (HAVIP_LOAD_CONCURRENCY) = -1: want at least 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tc.change(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}
