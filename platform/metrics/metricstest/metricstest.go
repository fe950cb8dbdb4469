// Package metricstest serves a test process's metrics and reads series from a /metrics body.
package metricstest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openhavip/havip/platform/metrics"
)

// Start serves the test process's metrics on a free loopback port until the test ends and
// returns the address. The meter provider it installs stays for the rest of the process, as in
// a daemon.
func Start(tb testing.TB) string {
	tb.Helper()
	s, err := metrics.Start(slog.New(slog.DiscardHandler), "test", metrics.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s.Addr()
}

// Get returns the body of http://addr/metrics.
func Get(tb testing.TB, addr string) string {
	tb.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s/metrics: %s\n%s", addr, resp.Status, body)
	}
	return string(body)
}

// Families parses a /metrics body (the Prometheus text format), by name.
func Families(tb testing.TB, body string) map[string]*dto.MetricFamily {
	tb.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		tb.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// Value sums the samples of the series of family name whose labels include want: a counter's
// or a gauge's value, a histogram's count. ok is false when no series matches.
func Value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (sum float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if !matches(m, want) {
			continue
		}
		ok = true
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum, ok
}

// Sum sums the sample sums of the histogram series of family name whose labels include want.
func Sum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	for _, m := range fams[name].GetMetric() {
		if matches(m, want) {
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return sum
}

func matches(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// Describe lists the series of a family, for a failure message.
func Describe(fams map[string]*dto.MetricFamily, name string) string {
	f := fams[name]
	if f == nil {
		return name + ": no such family"
	}
	var b strings.Builder
	for _, m := range f.GetMetric() {
		fmt.Fprintf(&b, "%s%v\n", name, m.GetLabel())
	}
	return b.String()
}
