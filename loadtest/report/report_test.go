package report_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhavip/havip/loadtest/report"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{name: "no values", p: 50, want: 0},
		{name: "one value", sorted: []time.Duration{7}, p: 99, want: 7},
		{name: "median of 1..100 ms", sorted: hundred, p: 50, want: 50 * time.Millisecond},
		{name: "p95 of 1..100 ms", sorted: hundred, p: 95, want: 95 * time.Millisecond},
		{name: "p99 of 1..100 ms", sorted: hundred, p: 99, want: 99 * time.Millisecond},
		{name: "p100 is the largest", sorted: hundred, p: 100, want: 100 * time.Millisecond},
		{name: "nearest rank rounds up", sorted: []time.Duration{1, 2, 3}, p: 50, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := report.Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

// TestNewRow: the rate is requests over the elapsed time; the latencies need not come sorted.
func TestNewRow(t *testing.T) {
	t.Parallel()
	lat := []time.Duration{4 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	got := report.NewRow("x", lat, 2*time.Second, 1)
	want := report.Row{Scenario: "x", Requests: 4, RPS: 2, P50: 2 * time.Millisecond, P95: 4 * time.Millisecond, P99: 4 * time.Millisecond, Errors: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewRow (-want +got):\n%s", diff)
	}
	if lat[0] != 4*time.Millisecond {
		t.Error("NewRow sorted its caller's slice")
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	err := report.Write(&b, []report.Row{
		{Scenario: "CreateHaVip (automatic IP)", Requests: 3000, RPS: 812.4, P50: 11340 * time.Microsecond, P95: 19490 * time.Microsecond, P99: 443640 * time.Microsecond},
		{Scenario: "AllocateAddresses", Requests: 30, RPS: 1719.6, P50: 4070 * time.Microsecond, P95: 10600 * time.Microsecond, P99: 19260 * time.Microsecond, Errors: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `| scenario                   | requests |  rps |      p50 |      p95 |       p99 | errors |
|----------------------------|---------:|-----:|---------:|---------:|----------:|-------:|
| CreateHaVip (automatic IP) |     3000 |  812 | 11.34 ms | 19.49 ms | 443.64 ms |      0 |
| AllocateAddresses          |       30 | 1720 |  4.07 ms | 10.60 ms |  19.26 ms |      2 |
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}
