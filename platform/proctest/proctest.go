// Package proctest builds a service binary and runs it as a real process for tests that kill it.
package proctest

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Build compiles the main package in dir into a temporary file and returns its path.
func Build(tb testing.TB, dir string) string {
	tb.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(tb.TempDir(), filepath.Base(abs))
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// Proc is a running service binary.
type Proc struct {
	Cmd *exec.Cmd
	// Addr is where it serves gRPC, read from its "grpc serving" log line.
	Addr string
	// MetricsAddr is where it serves /metrics, read from its "metrics serving" log line (""
	// when it serves none). Start gives every process HAVIP_METRICS_ADDR=127.0.0.1:0 unless env
	// says otherwise, so that processes of tests running at once never take the same port.
	MetricsAddr string

	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

// Start runs bin with env added to this process's environment, waits until it logs that it
// serves gRPC ("grpc serving"), and kills it when the test ends.
func Start(tb testing.TB, bin string, env ...string) *Proc {
	tb.Helper()
	return StartReady(tb, bin, "grpc serving", env...)
}

// StartReady is Start for a binary that logs ready (a message) once it serves, such as
// gatewayd's "serving"; Addr is then the "addr" of that line, if it has one.
func StartReady(tb testing.TB, bin, ready string, env ...string) *Proc {
	tb.Helper()
	return StartArgs(tb, bin, nil, ready, env...)
}

// StartArgs is StartReady for a binary run with args; Addr is the "addr" or, for etcd's
// "serving client traffic…" lines, the "address" of the ready line.
func StartArgs(tb testing.TB, bin string, args []string, ready string, env ...string) *Proc {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "HAVIP_METRICS_ADDR=127.0.0.1:0"), env...) // the last of a name wins
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); <-p.done; _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			var rec struct{ Msg, Addr, Address string }
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				continue
			}
			if rec.Addr == "" {
				rec.Addr = rec.Address
			}
			switch rec.Msg {
			case "metrics serving":
				p.MetricsAddr = rec.Addr // before the ready line is sent on, hence read
			case ready:
				select {
				case addr <- rec.Addr:
				default: // logged again (it is not a one-time line): the first counts
				}
			}
		}
	}()
	select {
	case p.Addr = <-addr: // after MetricsAddr: the metrics line comes before the ready one
	case <-p.done:
		tb.Fatalf("%s exited before serving:\n%v", bin, p.Log())
	}
	return p
}

// Record returns the first JSON log line whose message is msg, decoded, and whether there is
// one yet.
func (p *Proc) Record(msg string) (map[string]any, bool) {
	for _, l := range p.Log() {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
			return rec, true
		}
	}
	return nil, false
}

// Log returns the lines the process has written to stderr so far.
func (p *Proc) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Wait waits for the process to end (its log is then complete) and returns its exit error.
func (p *Proc) Wait() error {
	<-p.done
	return p.Cmd.Wait()
}
