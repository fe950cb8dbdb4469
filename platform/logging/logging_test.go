package logging_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/openhavip/havip/platform/logging"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		level string
		want  string
	}{
		{"", ""},
		{"debug", ""},
		{"INFO", ""},
		{"warn", ""},
		{"error", ""},
		{"verbose", `-log-level (HAVIP_LOG_LEVEL) = "verbose": want debug, info, warn or error`},
	} {
		t.Run(tc.level, func(t *testing.T) {
			got := ""
			if err := (logging.Config{Level: tc.level}).Validate(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewLevels(t *testing.T) {
	for _, tc := range []struct {
		level      string
		debug, inf bool
	}{
		{"debug", true, true},
		{"info", false, true},
		{"", false, true},
		{"error", false, false},
	} {
		t.Run(tc.level, func(t *testing.T) {
			var out bytes.Buffer
			log := logging.New(&out, tc.level, "svc")
			log.Debug("d")
			log.Info("i")
			if got := strings.Contains(out.String(), `"msg":"d"`); got != tc.debug {
				t.Errorf("debug logged: %v, want %v", got, tc.debug)
			}
			if got := strings.Contains(out.String(), `"msg":"i"`); got != tc.inf {
				t.Errorf("info logged: %v, want %v", got, tc.inf)
			}
			if tc.inf && !strings.Contains(out.String(), `"service":"svc"`) {
				t.Errorf("no service attribute: %s", out.String())
			}
		})
	}
}
