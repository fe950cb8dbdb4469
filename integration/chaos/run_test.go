package chaos

import (
	"strings"
	"testing"
	"time"
)

// TestSummary: per fault, the median and the largest figure over the runs; the takeover of a
// fault that is not the broker's is a dash.
func TestSummary(t *testing.T) {
	s := Summary([][]Row{
		{{Fault: "f", Errors: 1, Recovery: time.Second}, {Fault: "g", Takeover: 2 * time.Second}},
		{{Fault: "f", Errors: 5, Recovery: 3 * time.Second}, {Fault: "g", Takeover: time.Second}},
		{{Fault: "f", Errors: 2, Recovery: 2 * time.Second}, {Fault: "g", Takeover: 3 * time.Second}},
	})
	for _, want := range []string{"| f | 2 / 5 | 2s / 3s | — | 0s / 0s |", "| g | 0 / 0 | 0s / 0s | 2s / 3s | 0s / 0s |", "3 runs"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

// TestTableSlow: a fault after which throughput never came back within the bound says so.
func TestTableSlow(t *testing.T) {
	s := Table([]Row{{Fault: "f", Recovery: recoveryBound, Slow: true}, {Fault: "g", Recovery: time.Second}})
	for _, want := range []string{"| f | 0 | > 1m0s |", "| g | 0 | 1s |"} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
}
