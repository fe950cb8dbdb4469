package main

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openhavip/havip/gateway"
	"github.com/openhavip/havip/platform/config/configtest"
	"github.com/openhavip/havip/platform/healthcheck"
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

// TestHealth: `gatewayd health` asks /healthz at -http-addr, and fails unless it answers 200.
func TestHealth(t *testing.T) {
	status := http.StatusOK
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		w.WriteHeader(status)
	}))
	defer srv.Close()
	cfg := Config{HTTPAddr: strings.TrimPrefix(srv.URL, "http://")}
	if err := cfg.health(context.Background()); err != nil || path != "/healthz" {
		t.Fatalf("200: got %v on %q, want nil on /healthz", err, path)
	}
	status = http.StatusServiceUnavailable
	if err := cfg.health(context.Background()); !errors.Is(err, healthcheck.ErrNotServing) {
		t.Fatalf("503: got %v, want ErrNotServing", err)
	}
	cfg.HTTPCert, cfg.HTTPKey = "gw.crt", "gw.key" // HTTPS, which this server does not speak
	if err := cfg.health(context.Background()); err == nil {
		t.Fatal("HTTPS against a plain HTTP server: no error")
	}
}
