package agent

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"testing"
)

// TestOpenIn: the ports' sockets open inside the namespace named, where the port is, while the
// caller stays in its own, where it is not.
func TestOpenIn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root for network namespaces")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	tag := hex.EncodeToString(b)
	ns, port := "hvo"+tag, "hvp"+tag
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "-n", ns, "link", "add", port, "type", "veth", "peer", "name", "hvq"+tag)
	run("ip", "-n", ns, "link", "set", port, "up")

	a := New(Config{AgentID: "a", HostID: "h", Ports: map[string]string{port: "eni-x"}}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := a.Open(); err == nil {
		a.closePorts()
		t.Fatalf("Open found %s outside its namespace", port)
	}
	if err := a.OpenIn("/var/run/netns/" + ns); err != nil {
		t.Fatalf("OpenIn: %v", err)
	}
	defer a.closePorts()
	if len(a.conns) != 1 || a.conns[port] == nil {
		t.Fatalf("sockets: %v", a.conns)
	}
	if _, err := net.InterfaceByName(port); err == nil {
		t.Fatal("the caller's thread entered the namespace")
	}
	if err := New(Config{Ports: map[string]string{port: "eni-x"}}, nil, nil).OpenIn("/var/run/netns/no-such-" + tag); err == nil {
		t.Fatal("OpenIn of a namespace that does not exist: no error")
	}
}
