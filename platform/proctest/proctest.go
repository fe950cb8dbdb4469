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

	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

// Start runs bin with env added to this process's environment, waits until it logs that it
// serves, and kills it when the test ends.
func Start(tb testing.TB, bin string, env ...string) *Proc {
	tb.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
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
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "grpc serving" {
				addr <- rec.Addr
			}
		}
	}()
	select {
	case p.Addr = <-addr:
	case <-p.done:
		tb.Fatalf("%s exited before serving:\n%v", bin, p.Log())
	}
	return p
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
