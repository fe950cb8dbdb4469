package metrics_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/config/configtest"
	"github.com/openhavip/havip/platform/metrics"
	"github.com/openhavip/havip/platform/metrics/metricstest"
)

// Made before Start, as packages make theirs at init: it records once Start has run.
var (
	early = metrics.Must(metrics.Meter("github.com/openhavip/havip/platform/metrics_test").Float64Histogram("havip.test.wait",
		metric.WithUnit("s"), metric.WithDescription("A test histogram."), metric.WithExplicitBucketBoundaries(metrics.FastBuckets...)))
	earlyOpts = metrics.RecordOptions(attribute.String("result", "ok"))
)

// TestServe: Start serves, on its own listener, the instruments packages made before it ran, in
// the Prometheus format with Prometheus names (units and _total suffixes), labelled with the
// service; Stop stops serving.
func TestServe(t *testing.T) {
	before := metrics.Enabled()
	addr := metricstest.Start(t)
	if !metrics.Enabled() {
		t.Fatalf("not enabled after Start (before: %v)", before)
	}
	ctx := context.Background()
	series := map[string]string{"result": "ok", "service_name": "test"}
	// The instrument is the process's: count from what earlier runs of the test recorded.
	already, _ := metricstest.Value(metricstest.Families(t, metricstest.Get(t, addr)), "havip_test_wait_seconds", series)
	for range 3 {
		early.Record(ctx, 0.002, earlyOpts...)
	}
	body := metricstest.Get(t, addr)
	fams := metricstest.Families(t, body)
	if n, ok := metricstest.Value(fams, "havip_test_wait_seconds", series); !ok || n != already+3 {
		t.Errorf("havip_test_wait_seconds count: %v (found %v), want %v\n%s", n, ok, already+3, metricstest.Describe(fams, "havip_test_wait_seconds"))
	}
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "target_info"} {
		if fams[want] == nil {
			t.Errorf("no %s in /metrics", want)
		}
	}
	if !strings.Contains(body, "# HELP havip_test_wait_seconds A test histogram.") {
		t.Errorf("no HELP line for havip_test_wait_seconds:\n%s", body)
	}
}

// TestOff: an empty or "off" address serves nothing and starts nothing.
func TestOff(t *testing.T) {
	for _, addr := range []string{"", metrics.Off} {
		s, err := metrics.Start(nil, "test", metrics.Config{Addr: addr})
		if s != nil || err != nil {
			t.Errorf("Start(%q) = %v, %v; want nothing", addr, s, err)
		}
		if s.Addr() != "" || s.Stop(context.Background()) != nil {
			t.Errorf("a nil server has an address or fails to stop")
		}
	}
}

func TestConfig(t *testing.T) {
	// Each daemon has a default of its own (several run on one host), any other process 9464.
	seen := map[string]string{}
	for _, name := range []string{"ipamd", "havipd", "arpbrokerd", "eipd", "gatewayd", "havip-suite"} {
		var cfg metrics.Config
		cfg.RegisterFlags(flag.NewFlagSet(name, flag.ContinueOnError), name)
		if other, ok := seen[cfg.Addr]; ok {
			t.Errorf("%s and %s both default to %s", name, other, cfg.Addr)
		}
		seen[cfg.Addr] = name
	}
	var cfg metrics.Config
	fs := flag.NewFlagSet("testd", flag.ContinueOnError)
	cfg.RegisterFlags(fs, "testd")
	if cfg.Addr != metrics.DefaultAddr {
		t.Errorf("default %q, want %q", cfg.Addr, metrics.DefaultAddr)
	}
	configtest.Check(t, fs, nil, &cfg)
	cfg = metrics.Config{}
	fs = flag.NewFlagSet("testd", flag.ContinueOnError)
	cfg.RegisterFlags(fs, "testd")
	if err := config.Parse(fs, nil, func(k string) (string, bool) { return "off", k == "HAVIP_METRICS_ADDR" }); err != nil || !cfg.Disabled() {
		t.Errorf("HAVIP_METRICS_ADDR=off: %v, disabled %v", err, cfg.Disabled())
	}
	for addr, want := range map[string]string{
		"": "", "off": "", "127.0.0.1:0": "", "0.0.0.0:9464": "",
		"9464": `-metrics-addr (HAVIP_METRICS_ADDR) = "9464": want host:port, or "off"`,
	} {
		got := ""
		if err := (metrics.Config{Addr: addr}).Validate(); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("Validate(%q) = %q, want %q", addr, got, want)
		}
	}
	const noListener = `-pprof (HAVIP_PPROF) = true: profiles are served on the metrics listener, and -metrics-addr (HAVIP_METRICS_ADDR) is off`
	if err := (metrics.Config{Addr: "off", Pprof: true}).Validate(); err == nil || err.Error() != noListener {
		t.Errorf("profiles without a listener: %v, want %q", err, noListener)
	}
}

// TestPprof: Go's profiles are served on the metrics listener only when asked for.
func TestPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		s, err := metrics.Start(slog.New(slog.DiscardHandler), "test", metrics.Config{Addr: "127.0.0.1:0", Pprof: on})
		if err != nil {
			t.Fatal(err)
		}
		// (Not /debug/pprof/profile: it fails while the test binary profiles itself.)
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/cmdline", "/debug/pprof/symbol"} {
			resp, err := http.Get("http://" + s.Addr() + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; resp.StatusCode != want || on && len(body) == 0 {
				t.Errorf("pprof %v: GET %s: %d (%d bytes), want %d", on, path, resp.StatusCode, len(body), want)
			}
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
