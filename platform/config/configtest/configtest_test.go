package configtest_test

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/config/configtest"
)

// recorder is a testing.TB that keeps what Check reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

type Inner struct {
	Level string
}

type Config struct {
	Addr   string
	TTL    time.Duration
	Inner  Inner
	Hidden string
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		register  func(fs *flag.FlagSet, c *Config)
		unflagged []string
		want      []string // a substring of each report, in order
	}{
		{
			name: "complete",
			register: func(fs *flag.FlagSet, c *Config) {
				config.String(fs, &c.Addr, config.Setting{Flag: "addr", Env: "HAVIP_ADDR"}, "where")
				config.Duration(fs, &c.TTL, config.Setting{Flag: "ttl", Env: "HAVIP_TTL"}, "how long")
				config.String(fs, &c.Inner.Level, config.Setting{Flag: "level", Env: "HAVIP_LEVEL"}, "how loud")
			},
			unflagged: []string{"Config.Hidden"},
		},
		{
			name: "a field without a flag, a flag without a variable or usage",
			register: func(fs *flag.FlagSet, c *Config) {
				config.String(fs, &c.Addr, config.Setting{Flag: "addr", Env: "HAVIP_ADDR"}, "")
				fs.DurationVar(&c.TTL, "ttl", 0, "how long")
			},
			unflagged: []string{"Config.Hidden"},
			want:      []string{"-addr has no usage", "-ttl has no HAVIP_* environment variable", "-h does not show -ttl", "no flag sets Config.Inner.Level"},
		},
		{
			name: "two flags for one field; a flag for no field; a field said to have none",
			register: func(fs *flag.FlagSet, c *Config) {
				var elsewhere string
				config.String(fs, &c.Addr, config.Setting{Flag: "addr", Env: "HAVIP_ADDR"}, "where")
				config.String(fs, &c.Addr, config.Setting{Flag: "addr2", Env: "HAVIP_ADDR2"}, "where again")
				config.String(fs, &elsewhere, config.Setting{Flag: "other", Env: "HAVIP_OTHER"}, "not in the config")
				config.Duration(fs, &c.TTL, config.Setting{Flag: "ttl", Env: "HAVIP_TTL"}, "how long")
				config.String(fs, &c.Inner.Level, config.Setting{Flag: "level", Env: "HAVIP_LEVEL"}, "how loud")
			},
			unflagged: []string{"Config.Hidden", "Config.TTL"},
			want:      []string{"-addr and -addr2 both set Config.Addr", "-other sets fields [], want exactly one", "Config.TTL is said to have no flag, but -ttl sets it"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			tc.register(fs, &c)
			r := &recorder{TB: t}
			configtest.Check(r, fs, tc.unflagged, &c)
			var got []string
			for i, e := range r.errs {
				if i < len(tc.want) && strings.Contains(e, tc.want[i]) {
					got = append(got, tc.want[i])
				} else {
					got = append(got, e)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("reports (-want +got):\n%s", diff)
			}
		})
	}
}
