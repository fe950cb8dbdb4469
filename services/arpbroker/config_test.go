package arpbroker_test

import (
	"testing"
	"time"

	"github.com/openhavip/havip/platform/config/configtest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/arpbroker"
)

// TestFlags: arpbrokerd's -h lists every setting it reads (the common ones and
// arpbroker.Config's), each with its variable and default; havip-suite's share of them leaves
// out -advertise-addr.
func TestFlags(t *testing.T) {
	var common service.Config
	var cfg arpbroker.Config
	configtest.Check(t, service.Flags("arpbrokerd", "", &common, &cfg), nil, &common, &cfg)

	var suite arpbroker.Config
	fs := service.Flags("suite", "", &common)
	suite.RegisterSuiteFlags(fs)
	if fs.Lookup("advertise-addr") != nil || fs.Lookup("arp-hold-down") == nil || fs.Lookup("arp-election-ttl") == nil {
		t.Errorf("suite flags: want -arp-hold-down and -arp-election-ttl, not -advertise-addr")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  arpbroker.Config
		want string
	}{
		{name: "zero: the defaults", cfg: arpbroker.Config{}},
		{name: "valid", cfg: arpbroker.Config{HoldDown: time.Nanosecond, ElectionTTL: 2 * time.Second, AdvertiseAddr: "arpbrokerd:50051"}},
		{name: "negative hold-down", cfg: arpbroker.Config{HoldDown: -time.Second}, want: "-arp-hold-down (HAVIP_ARP_HOLD_DOWN) = -1s: want a positive duration"},
		{name: "election TTL under 1s", cfg: arpbroker.Config{ElectionTTL: 500 * time.Millisecond}, want: "-arp-election-ttl (HAVIP_ARP_ELECTION_TTL) = 500ms: want whole seconds, at least 1s"},
		{name: "election TTL not whole seconds", cfg: arpbroker.Config{ElectionTTL: 2500 * time.Millisecond}, want: "-arp-election-ttl (HAVIP_ARP_ELECTION_TTL) = 2.5s: want whole seconds, at least 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errString(tc.cfg.Validate()); got != tc.want {
				t.Errorf("Validate: got %q, want %q", got, tc.want)
			}
			if _, err := arpbroker.NewModule(tc.cfg); errString(err) != tc.want {
				t.Errorf("NewModule: got %v, want %q", err, tc.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
