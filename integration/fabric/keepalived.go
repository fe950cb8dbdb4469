package fabric

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Keepalived is keepalived running in a VM's namespace.
type Keepalived struct {
	cmd  *exec.Cmd
	once sync.Once
}

// StartKeepalived runs keepalived (VRRP only) with config in namespace ns, logging to
// dir/name.log (shown if the test fails); it is killed when the test ends.
func StartKeepalived(tb testing.TB, ns, dir, name, config string) *Keepalived {
	tb.Helper()
	if _, err := exec.LookPath("keepalived"); err != nil {
		tb.Fatal("keepalived is not installed (scripts/install-system-deps.sh)")
	}
	conf := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "keepalived", "--dont-fork", "--log-console", "--vrrp",
		"-f", conf, "-p", filepath.Join(dir, name+".pid"), "-r", filepath.Join(dir, name+"-vrrp.pid"), "-c", filepath.Join(dir, name+"-check.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // kill the whole group: keepalived forks its VRRP child
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	k := &Keepalived{cmd: cmd}
	tb.Cleanup(func() {
		k.Kill()
		_ = logf.Close()
		if tb.Failed() {
			b, _ := os.ReadFile(logf.Name())
			tb.Logf("%s log:\n%s", name, b)
		}
	})
	return k
}

// Kill kills keepalived and its children with SIGKILL, like a crash.
func (k *Keepalived) Kill() {
	k.once.Do(func() {
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		_ = k.cmd.Wait()
	})
}

// HasVIP reports whether the VM in namespace ns carries vip on its eth0, as keepalived's MASTER does.
func HasVIP(tb testing.TB, ns, vip string) bool {
	tb.Helper()
	out, err := exec.Command("ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		tb.Fatalf("ip addr show: %v\n%s", err, out)
	}
	return strings.Contains(string(out), " "+vip+"/")
}
