package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Proc is a program running in a node's namespace, that a fault may kill, pause or restart.
type Proc struct {
	Name string
	Node *Node
	t    testing.TB
	bin  string
	args []string
	env  []string
	log  string // its stderr and stdout, across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs bin with args and env (added to this process's) in n's namespace; it is killed
// when the test ends.
func (n *Node) Start(t testing.TB, name, bin string, args, env []string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Node: n, t: t, bin: bin, args: args, env: env, log: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(p.Kill)
	p.Restart()
	return p
}

// Restart starts the program again (after Kill).
func (p *Proc) Restart() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	cmd := exec.Command("ip", append([]string{"netns", "exec", p.Node.NS, p.bin}, p.args...)...) // ip execs the program: same PID
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

// Pid is the running program's process ID.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Kill kills the program with SIGKILL (which ends a stopped one too) and waits for it to exit.
func (p *Proc) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Signal sends sig (SIGSTOP, SIGCONT) to the program.
func (p *Proc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := syscall.Kill(p.Pid(), sig); err != nil {
		p.t.Fatalf("%v to %s: %v", sig, p.Name, err)
	}
}

// Exited reports whether the program has exited.
func (p *Proc) Exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Tail is the last n lines of the program's output.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("---- %s (last %d lines of %s)\n%s", p.Name, len(lines), p.log, strings.Join(lines, "\n"))
}
