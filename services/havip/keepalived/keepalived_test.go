package keepalived_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openhavip/havip/services/havip/keepalived"
)

// TestRenderPassesKeepalivedConfigTest checks every rendered configuration with the real
// keepalived's own configuration check.
func TestRenderPassesKeepalivedConfigTest(t *testing.T) {
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatal("keepalived is not installed (make test installs it: scripts/install-system-deps.sh)")
	}
	members := []keepalived.Member{
		{InstanceID: "ins-aaaaaaaa", NetworkInterfaceID: "eni-aaaaaaaa", IP: netip.MustParseAddr("172.16.16.5")},
		{InstanceID: "ins-bbbbbbbb", NetworkInterfaceID: "eni-bbbbbbbb", IP: netip.MustParseAddr("172.16.16.6")},
		{InstanceID: "ins-cccccccc", NetworkInterfaceID: "eni-cccccccc", IP: netip.MustParseAddr("172.16.16.7")},
	}
	// keepalived checks that the interface exists: give it one (a veth), in a namespace of our own.
	ns := fmt.Sprintf("havip-kcfg-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add (the test needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1-peer").CombinedOutput(); err != nil {
		t.Fatalf("veth: %v %s", err, out)
	}
	check := func(path string) ([]byte, error) {
		return exec.Command("ip", "netns", "exec", ns, bin, "--config-test", "-f", path).CombinedOutput()
	}
	configs, err := keepalived.Render("havip-abcd1234", netip.MustParseAddr("172.16.16.12"), "eth1", members)
	if err != nil {
		t.Fatal(err)
	}
	if len(configs) != 3 {
		t.Fatalf("%d configs", len(configs))
	}
	seen := map[uint32]bool{}
	for i, c := range configs {
		if seen[c.Priority] {
			t.Errorf("priority %d twice", c.Priority)
		}
		seen[c.Priority] = true
		for _, want := range []string{"unicast_src_ip " + members[i].IP.String(), "virtual_ipaddress {\n        172.16.16.12", "nopreempt", "interface eth1", "garp_master_refresh 5\n", "check_unicast_src\n"} {
			if !strings.Contains(c.Text, want) {
				t.Errorf("config %d lacks %q:\n%s", i, want, c.Text)
			}
		}
		for j, m := range members {
			if has := strings.Contains(c.Text, "        "+m.IP.String()+"\n"); has != (i != j) {
				t.Errorf("config %d: peer %s listed=%v", i, m.IP, has)
			}
		}
		path := filepath.Join(t.TempDir(), "keepalived.conf")
		if err := os.WriteFile(path, []byte(c.Text), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := check(path); err != nil {
			t.Errorf("keepalived --config-test rejects config %d: %v\n%s\n%s", i, err, out, c.Text)
		}
	}
	// A broken file must fail the same check, or the check above proves nothing.
	bad := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(bad, []byte("vrrp_instance x {\n  virtual_router_id 999\n  priority abc\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := check(bad); err == nil {
		t.Errorf("keepalived --config-test accepts a broken file:\n%s", out)
	}
}
