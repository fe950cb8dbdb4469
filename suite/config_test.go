package suite_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/config/configtest"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/platform/tracing"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/eip"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/suite"
)

// TestFlags: havip-suite's -h lists every setting it reads — its own and those of its services
// that apply in one process — each with its variable and default.
func TestFlags(t *testing.T) {
	var cfg suite.Config
	fs := config.NewFlagSet("havip-suite", "", tracing.EnvHelp)
	cfg.RegisterFlags(fs)
	configtest.Check(t, fs, []string{"Config.UnsafeNoFsync", "Config.HaVip.IpamAddr", "Config.ArpBroker.AdvertiseAddr"}, &cfg)
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  suite.Config
		want string
	}{
		{name: "zero: the defaults", cfg: suite.Config{}},
		{name: "bad gRPC address", cfg: suite.Config{GRPCAddr: "50051"}, want: `-grpc-addr (HAVIP_GRPC_ADDR) = "50051": want host:port`},
		{name: "bad etcd address", cfg: suite.Config{EtcdAddr: "etcd"}, want: `-etcd-addr (HAVIP_ETCD_ADDR) = "etcd": want host:port`},
		{name: "plaintext etcd", cfg: suite.Config{Etcd: []string{"http://127.0.0.1:2379"}}, want: `-etcd (HAVIP_ETCD_ENDPOINTS) = "http://127.0.0.1:2379": "http://127.0.0.1:2379" is plaintext: etcd is a hop like the others; use https:// (etcd with client-cert auth), or -insecure-etcd (HAVIP_INSECURE_ETCD) for development`},
		{name: "plaintext etcd, for development", cfg: suite.Config{Etcd: []string{"http://127.0.0.1:2379"}, InsecureEtcd: true}},
		{name: "bad etcd endpoint", cfg: suite.Config{InsecureEtcd: true, Etcd: []string{"http://127.0.0.1:2379", "etcd"}}, want: `-etcd (HAVIP_ETCD_ENDPOINTS) = "http://127.0.0.1:2379,etcd": "etcd" is not an endpoint: want http://host:port, https://host:port or host:port`},
		{name: "https etcd in plaintext", cfg: suite.Config{Etcd: []string{"https://127.0.0.1:2379"}, Plaintext: true}, want: `-etcd (HAVIP_ETCD_ENDPOINTS) = "https://127.0.0.1:2379": an https:// etcd is called with the suite's certificate, which -insecure-plaintext (HAVIP_INSECURE_PLAINTEXT) does not make`},
		{name: "compaction retention", cfg: suite.Config{EtcdCompactionRetention: time.Millisecond}, want: "-etcd-compaction-retention (HAVIP_ETCD_COMPACTION_RETENTION) = 1ms: want at least 1s"},
		{name: "quota", cfg: suite.Config{EtcdQuotaBytes: 1024}, want: "-etcd-quota-bytes (HAVIP_ETCD_QUOTA_BYTES) = 1024: want at least 16777216 (16 MiB)"},
		{name: "bad HTTP address", cfg: suite.Config{HTTPAddr: "8080"}, want: `-http-addr (HAVIP_HTTP_ADDR) = "8080": want host:port`},
		{name: "log level", cfg: suite.Config{Log: logging.Config{Level: "loud"}}, want: `-log-level (HAVIP_LOG_LEVEL) = "loud": want debug, info, warn or error`},
		{name: "reservation TTL", cfg: suite.Config{HaVip: havip.Config{ReservationTTL: time.Millisecond}}, want: "-reservation-ttl (HAVIP_RESERVATION_TTL) = 1ms: want at least 1s"},
		{name: "hold-down", cfg: suite.Config{ArpBroker: arpbroker.Config{HoldDown: -1}}, want: "-arp-hold-down (HAVIP_ARP_HOLD_DOWN) = -1ns: want a positive duration"},
		{name: "pools", cfg: suite.Config{Eip: eip.Config{Pools: "x"}}, want: `-eip-pools (HAVIP_EIP_POOLS) = "x": pool "x": netip.ParsePrefix("x"): no '/'`},
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

// TestRunChecksConfig: Run refuses a configuration that is not valid before it starts anything.
func TestRunChecksConfig(t *testing.T) {
	dir := t.TempDir()
	err := suite.Run(context.Background(), suite.Config{DataDir: dir, Eip: eip.Config{Pools: "x"}}, etcdtest.Quiet, io.Discard, nil)
	if err == nil || err.Error() != `-eip-pools (HAVIP_EIP_POOLS) = "x": pool "x": netip.ParsePrefix("x"): no '/'` {
		t.Errorf("Run: got %v, want the pool's error", err)
	}
}
