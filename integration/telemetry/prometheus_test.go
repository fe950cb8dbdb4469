package telemetry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/openhavip/havip/platform/logging/logtest"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tool returns the path of a Prometheus program, or skips the test when it is missing and
// cannot be installed here (not root); as root it is missing only if
// scripts/install-system-deps.sh did not run, which is a failure.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		t.Skipf("%s is not installed (Debian package prometheus; scripts/install-system-deps.sh installs it as root)", name)
	}
	t.Fatalf("%s is not installed: run scripts/install-system-deps.sh (make test does)", name)
	return ""
}

// prom is a Prometheus server of the test's own, on a free loopback port, with its data in the
// test's temporary directory.
type prom struct {
	t    *testing.T
	base string // http://127.0.0.1:port
}

// startPrometheus runs Prometheus scraping each job's target (host:port) every second and
// evaluating the rules files every second, and waits until it is ready.
func startPrometheus(t *testing.T, jobs map[string]string, rules ...string) *prom {
	t.Helper()
	bin := tool(t, "prometheus")
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	if len(rules) > 0 {
		cfg.WriteString("rule_files:\n")
		for _, r := range rules {
			abs, err := filepath.Abs(r)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&cfg, "  - %q\n", abs)
		}
	}
	cfg.WriteString("scrape_configs:\n")
	names := make([]string, 0, len(jobs))
	for j := range jobs {
		names = append(names, j)
	}
	sort.Strings(names)
	for _, j := range names {
		fmt.Fprintf(&cfg, "  - job_name: %q\n    static_configs:\n      - targets: [%q]\n", j, jobs[j])
	}
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool(t, "promtool"), "check", "config", conf).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s\n%s", err, out, cfg.String())
	}
	// A free port: taken and given back, then named to Prometheus (which cannot tell which port
	// it took when given port 0). Another process taking it between the two makes Prometheus
	// exit, and the test tries another.
	for attempt := 0; ; attempt++ {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := lis.Addr().String()
		_ = lis.Close()
		log := &logtest.Buffer{}
		cmd := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
			"--web.listen-address="+addr, "--log.level=warn")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		p := &prom{t: t, base: "http://" + addr}
		err = p.awaitReady(exited)
		if err == nil {
			return p
		}
		if errors.Is(err, errExited) && attempt < 3 && strings.Contains(log.String(), "address already in use") {
			continue
		}
		t.Fatalf("prometheus never got ready:\n%s", log.String())
	}
}

var errExited = errors.New("prometheus exited")

// awaitReady polls /-/ready until Prometheus answers 200, for up to 30 s.
func (p *prom) awaitReady(exited <-chan struct{}) error {
	c := http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errExited
		default:
		}
		if resp, err := c.Get(p.base + "/-/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond) // polling a starting process
	}
	return fmt.Errorf("not ready after 30s")
}

// get decodes the data of a Prometheus API answer.
func (p *prom) get(path string, data any) error {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(p.base + path)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("GET %s: %s: %w", path, resp.Status, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("GET %s: %s: %s", path, body.Status, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}

// target is one scrape target as /api/v1/targets shows it.
type target struct {
	Labels    map[string]string `json:"labels"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
}

// awaitTargetsUp waits until every job has a target and each is up.
func (p *prom) awaitTargetsUp(jobs map[string]string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var data struct {
			ActiveTargets []target `json:"activeTargets"`
		}
		err := p.get("/api/v1/targets?state=active", &data)
		up := map[string]bool{}
		var state []string
		for _, tg := range data.ActiveTargets {
			up[tg.Labels["job"]] = tg.Health == "up"
			state = append(state, fmt.Sprintf("%s %s %s %s", tg.Labels["job"], tg.Labels["instance"], tg.Health, tg.LastError))
		}
		all := err == nil
		for j := range jobs {
			all = all && up[j]
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("targets not all up after 30s (err %v):\n%s", err, strings.Join(state, "\n"))
		}
		time.Sleep(200 * time.Millisecond) // Prometheus scrapes every second
	}
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) float() float64 {
	v, _ := s.Value[1].(string)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0
	}
	return f
}

// query runs an instant query.
func (p *prom) query(expr string) ([]sample, error) {
	var data struct {
		ResultType string   `json:"resultType"`
		Result     []sample `json:"result"`
	}
	if err := p.get("/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: a %s, want a vector", expr, data.ResultType)
	}
	return data.Result, nil
}

// awaitValue polls an instant query until it answers one series whose value passes ok (the
// series a scrape brings appear within a few seconds), and returns the value.
func (p *prom) awaitValue(expr, want string, ok func(float64) bool) float64 {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := p.query(expr)
		if err == nil && len(res) == 1 && ok(res[0].float()) {
			return res[0].float()
		}
		if time.Now().After(deadline) {
			p.t.Errorf("%s: got %v (err %v), want one series %s", expr, res, err, want)
			return 0
		}
		time.Sleep(200 * time.Millisecond) // Prometheus scrapes and evaluates every second
	}
}
