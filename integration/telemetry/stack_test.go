// Package telemetry_test runs the daemons as processes and checks what they tell operators: the
// real Prometheus scrapes every daemon's /metrics and the rules' tests pass (metrics_test.go,
// rules_test.go), and one request's trace runs gatewayd → havipd → ipamd into an OTLP receiver
// (traces_test.go).
package telemetry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/proctest"
)

// packages are the daemons of the stack and where each is built from.
var packages = map[string]string{
	"ipamd":      "../../services/ipam/cmd/ipamd",
	"havipd":     "../../services/havip/cmd/havipd",
	"arpbrokerd": "../../services/arpbroker/cmd/arpbrokerd",
	"eipd":       "../../services/eip/cmd/eipd",
	"gatewayd":   "../../gateway/cmd/gatewayd",
}

// bins is the directory the daemons are built into, once for every test of the package.
var bins string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "havip-telemetry-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { _ = os.RemoveAll(dir) }()
		args := []string{"build", "-o", dir + "/"}
		for _, p := range packages {
			args = append(args, p)
		}
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build the daemons: %v\n%s", err, out)
			return 1
		}
		bins = dir
		return m.Run()
	}())
}

// account is the tenant every test acts for.
const account = "acct-telemetry"

// stack is a fresh etcd and daemons as processes on it, each serving /metrics on a free port
// (proctest's HAVIP_METRICS_ADDR=127.0.0.1:0).
type stack struct {
	t     *testing.T
	procs map[string]*proctest.Proc
	key   string // an API key of account, for gatewayd
	http  string // gatewayd's address
}

// startStack starts the named daemons (from ipamd, havipd, arpbrokerd, eipd, gatewayd; in
// that order, each told where the ones before serve) with env added to each.
func startStack(t *testing.T, names []string, env ...string) *stack {
	t.Helper()
	endpoint, stop, err := etcdtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop) // after the daemons' cleanups, which run first
	s := &stack{t: t, procs: map[string]*proctest.Proc{}, key: apikey.New()}
	keys := filepath.Join(t.TempDir(), "api-keys")
	if err := os.WriteFile(keys, []byte(apikey.Line(account, s.key)), 0o600); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	common := append([]string{"HAVIP_GRPC_ADDR=127.0.0.1:0", "HAVIP_ETCD_ENDPOINTS=" + endpoint, "HAVIP_INSECURE_ETCD=true"}, env...)
	addr := func(name string) string {
		if p := s.procs[name]; p != nil {
			return p.Addr
		}
		return "127.0.0.1:1" // not started: nothing the test calls goes there
	}
	for _, n := range []string{"ipamd", "havipd", "arpbrokerd", "eipd"} {
		if !want[n] {
			continue
		}
		e := append(append([]string{}, common...), mtlstest.Env(t, identity.ID{Kind: identity.Service, Name: n})...)
		switch n {
		case "havipd":
			e = append(e, "HAVIP_IPAM_ADDR="+addr("ipamd"))
		case "arpbrokerd":
			e = append(e, "HAVIP_ARP_HOLD_DOWN=50ms", "HAVIP_ARP_ELECTION_TTL=2s")
		}
		s.procs[n] = proctest.Start(t, filepath.Join(bins, n), e...)
	}
	if want["gatewayd"] {
		e := append(append([]string{}, env...), mtlstest.Env(t, mtlstest.Gateway)...)
		e = append(e, "HAVIP_HTTP_ADDR=127.0.0.1:0", "HAVIP_API_KEYS_FILE="+keys,
			"HAVIP_IPAM_ADDR="+addr("ipamd"), "HAVIP_HAVIP_ADDR="+addr("havipd"), "HAVIP_EIP_ADDR="+addr("eipd"))
		p := proctest.StartReady(t, filepath.Join(bins, "gatewayd"), "serving", e...)
		rec, _ := p.Record("serving")
		s.http, _ = rec["http"].(string)
		if s.http == "" {
			t.Fatalf("gatewayd logged no HTTP address: %v", rec)
		}
		s.procs["gatewayd"] = p
	}
	for n, p := range s.procs {
		if p.MetricsAddr == "" {
			t.Fatalf("%s logged no metrics address:\n%s", n, strings.Join(p.Log(), "\n"))
		}
	}
	return s
}

// rest calls gatewayd: method on path with body (JSON) and the request ID, as the account's
// key; it returns the status and the decoded answer.
func (s *stack) rest(method, path, requestID string, body any) (int, map[string]any) {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+s.http+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("X-Request-Id", requestID)
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		s.t.Fatalf("%s %s: %s, undecodable body: %v", method, path, resp.Status, err)
	}
	return resp.StatusCode, out
}

// field reads a string at a path of keys in a decoded answer ("" when absent).
func field(m map[string]any, keys ...string) string {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[k]
	}
	s, _ := v.(string)
	return s
}
