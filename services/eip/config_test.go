package eip_test

import (
	"testing"

	"github.com/openhavip/havip/platform/config/configtest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/services/eip"
)

// TestFlags: eipd's -h lists every setting it reads (the common ones and eip.Config's), each
// with its variable and default.
func TestFlags(t *testing.T) {
	var common service.Config
	var cfg eip.Config
	configtest.Check(t, service.Flags("eipd", "", &common, &cfg), nil, &common, &cfg)
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  eip.Config
		want string
	}{
		{name: "zero: the default pool", cfg: eip.Config{}},
		{name: "CIDRs and ranges", cfg: eip.Config{Pools: "192.0.2.8/29, 192.0.2.100-192.0.2.102,"}},
		{name: "not a pool", cfg: eip.Config{Pools: "192.0.2.8/29,public"},
			want: `-eip-pools (HAVIP_EIP_POOLS) = "192.0.2.8/29,public": pool "public": netip.ParsePrefix("public"): no '/'`},
		{name: "backwards range", cfg: eip.Config{Pools: "192.0.2.9-192.0.2.1"},
			want: `-eip-pools (HAVIP_EIP_POOLS) = "192.0.2.9-192.0.2.1": pool range "192.0.2.9-192.0.2.1": want first-last IPv4`},
		{name: "only commas", cfg: eip.Config{Pools: ", ,"}, want: `-eip-pools (HAVIP_EIP_POOLS) = ", ,": no public pool in ", ,"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := tc.cfg.Validate(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate: got %q, want %q", got, tc.want)
			}
			if _, err := eip.NewModule(tc.cfg); (err != nil) != (tc.want != "") {
				t.Errorf("NewModule: got %v, want an error: %v", err, tc.want != "")
			}
		})
	}
}
