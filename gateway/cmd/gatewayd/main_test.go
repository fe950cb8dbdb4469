package main

import (
	"flag"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openhavip/havip/gateway"
	"github.com/openhavip/havip/platform/config/configtest"
	"github.com/openhavip/havip/platform/mtls"
)

// TestFlags: gatewayd's -h lists every setting, each with its variable and default.
func TestFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("gatewayd", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	configtest.Check(t, fs, nil, &cfg)
}

func TestConfigValidate(t *testing.T) {
	files := mtls.Config{CA: "ca.crt", Cert: "gateway.crt", Key: "gateway.key"}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "the defaults, with certificate files", cfg: Config{TLS: files}},
		{name: "no certificate files", cfg: Config{}, want: `-ca (HAVIP_TLS_CA) = "": required (or -insecure-plaintext for development)`},
		{name: "plaintext", cfg: Config{TLS: mtls.Config{Plaintext: true}}},
		{name: "HTTPS", cfg: Config{TLS: files, HTTPCert: "gw.crt", HTTPKey: "gw.key"}},
		{name: "HTTPS certificate without its key", cfg: Config{TLS: files, HTTPCert: "gw.crt"}, want: `-http-key (HAVIP_HTTP_KEY) = "": give both -http-cert and -http-key, or neither`},
		{name: "per-service addresses", cfg: Config{TLS: files, IpamAddr: "ipamd:50051", HaVipAddr: "havipd:50051", EipAddr: "eipd:50051"}},
		{name: "bad HTTP address", cfg: Config{HTTPAddr: "8080"}, want: `-http-addr (HAVIP_HTTP_ADDR) = "8080": want host:port`},
		{name: "bad havipd address", cfg: Config{HaVipAddr: "havipd"}, want: `-havip-addr (HAVIP_HAVIP_ADDR) = "havipd": want host:port`},
		{name: "negative body size", cfg: Config{MaxBodyBytes: -1}, want: "-max-body-bytes (HAVIP_MAX_BODY_BYTES) = -1: want a positive size"},
		{name: "negative timeout", cfg: Config{RequestTimeout: -time.Second}, want: "-request-timeout (HAVIP_REQUEST_TIMEOUT) = -1s: want a positive duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := tc.cfg.Validate(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestGatewayConfig: each service's address falls back to -backend.
func TestGatewayConfig(t *testing.T) {
	got := Config{Backend: "b:1", HaVipAddr: "h:2"}.gatewayConfig(nil, nil, nil)
	want := gateway.Config{IpamAddr: "b:1", HaVipAddr: "h:2", EipAddr: "b:1", MaxBodyBytes: gateway.DefaultMaxBodyBytes, RequestTimeout: gateway.DefaultRequestTimeout}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(gateway.Config{}, "Local", "Keys", "TLS", "Log")); diff != "" {
		t.Errorf("gateway config (-want +got):\n%s", diff)
	}
}
