package havip_test

import (
	"testing"
	"time"

	"github.com/openhavip/havip/platform/config/configtest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/havip"
)

// TestFlags: havipd's -h lists every setting it reads (the common ones and havip.Config's),
// each with its variable and default; havip-suite's share of them leaves out -ipam-addr.
func TestFlags(t *testing.T) {
	var common service.Config
	var cfg havip.Config
	configtest.Check(t, service.Flags("havipd", "", &common, &cfg), nil, &common, &cfg)

	var suite havip.Config
	fs := service.Flags("suite", "", &common)
	suite.RegisterSuiteFlags(fs)
	if fs.Lookup("ipam-addr") != nil || fs.Lookup("reservation-ttl") == nil {
		t.Errorf("suite flags: -ipam-addr %v, -reservation-ttl %v; want only the TTL", fs.Lookup("ipam-addr"), fs.Lookup("reservation-ttl"))
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name             string
		cfg              havip.Config
		want, standalone string
	}{
		{name: "zero: the defaults", cfg: havip.Config{}, standalone: `-ipam-addr (HAVIP_IPAM_ADDR) = "": required: havipd calls ipamd there`},
		{name: "valid", cfg: havip.Config{ReservationTTL: time.Second, IpamAddr: "ipamd:50051"}},
		{name: "TTL too short", cfg: havip.Config{ReservationTTL: 500 * time.Millisecond, IpamAddr: "ipamd:50051"},
			want: "-reservation-ttl (HAVIP_RESERVATION_TTL) = 500ms: want at least 1s", standalone: "-reservation-ttl (HAVIP_RESERVATION_TTL) = 500ms: want at least 1s"},
		{name: "TTL negative", cfg: havip.Config{ReservationTTL: -time.Second},
			want: "-reservation-ttl (HAVIP_RESERVATION_TTL) = -1s: want at least 1s", standalone: `-ipam-addr (HAVIP_IPAM_ADDR) = "": required: havipd calls ipamd there`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errString(tc.cfg.Validate()); got != tc.want {
				t.Errorf("Validate: got %q, want %q", got, tc.want)
			}
			if got := errString(tc.cfg.ValidateStandalone()); got != tc.standalone {
				t.Errorf("ValidateStandalone: got %q, want %q", got, tc.standalone)
			}
			if _, err := havip.NewModule(tc.cfg); errString(err) != tc.want {
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
