package service_test

import (
	"testing"

	"github.com/openhavip/havip/platform/config/configtest"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/service"
)

// TestFlags: every common setting is a flag with a variable and a default in -h.
func TestFlags(t *testing.T) {
	var cfg service.Config
	configtest.Check(t, service.Flags("testd", "testd serves.", &cfg), nil, &cfg)
}

func TestConfigValidate(t *testing.T) {
	files := mtls.Config{CA: "ca.crt", Cert: "d.crt", Key: "d.key"}
	for _, tc := range []struct {
		name string
		cfg  service.Config
		want string
	}{
		{name: "the defaults, with certificate files", cfg: service.Config{TLS: files}},
		{name: "no certificate files", cfg: service.Config{}, want: `-ca (HAVIP_TLS_CA) = "": required (or -insecure-plaintext for development)`},
		{name: "no key file", cfg: service.Config{TLS: mtls.Config{CA: "ca.crt", Cert: "d.crt"}}, want: `-key (HAVIP_TLS_KEY) = "": required (or -insecure-plaintext for development)`},
		{name: "plaintext, for development", cfg: service.Config{TLS: mtls.Config{Plaintext: true}}},
		{name: "any port", cfg: service.Config{TLS: files, GRPCAddr: "127.0.0.1:0", Etcd: []string{"https://e1:2379", "https://[::1]:2379"}}},
		{name: "plaintext etcd", cfg: service.Config{TLS: files, Etcd: []string{"https://e1:2379", "e2:2379"}},
			want: `-etcd (HAVIP_ETCD_ENDPOINTS) = "https://e1:2379,e2:2379": "e2:2379" is plaintext: etcd is a hop like the others; use https:// (etcd with client-cert auth), or -insecure-etcd for development`},
		{name: "plaintext etcd, for development", cfg: service.Config{TLS: files, InsecureEtcd: true, Etcd: []string{"http://e1:2379", "e2:2379"}}},
		{name: "plaintext everything, for development", cfg: service.Config{TLS: mtls.Config{Plaintext: true}, Etcd: []string{"http://e1:2379"}}},
		{name: "plaintext on every address", cfg: service.Config{TLS: mtls.Config{Plaintext: true}, GRPCAddr: "0.0.0.0:50051"},
			want: `-grpc-addr (HAVIP_GRPC_ADDR) = "0.0.0.0:50051": plaintext (-insecure-plaintext) serves on loopback only, where every caller is this machine's; 0.0.0.0 is not`},
		{name: "no port", cfg: service.Config{GRPCAddr: "127.0.0.1"}, want: `-grpc-addr (HAVIP_GRPC_ADDR) = "127.0.0.1": want host:port`},
		{name: "bad endpoint", cfg: service.Config{Etcd: []string{"http://e1:2379", "e2"}},
			want: `-etcd (HAVIP_ETCD_ENDPOINTS) = "http://e1:2379,e2": "e2" is not an endpoint: want http://host:port, https://host:port or host:port`},
		{name: "endpoint URL with no host", cfg: service.Config{Etcd: []string{"http://"}},
			want: `-etcd (HAVIP_ETCD_ENDPOINTS) = "http://": "http://" is not an endpoint: want http://host:port, https://host:port or host:port`},
		{name: "log level", cfg: service.Config{TLS: files, Log: logging.Config{Level: "loud"}}, want: `-log-level (HAVIP_LOG_LEVEL) = "loud": want debug, info, warn or error`},
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
