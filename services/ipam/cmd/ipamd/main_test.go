package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/tenant"
)

// TestBinaryServesAndStopsOnSIGTERM runs the real ipamd binary: it logs JSON lines, serves, and
// on SIGTERM drains and exits 0.
func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	endpoint, stopEtcd, err := etcdtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stopEtcd()
	bin := filepath.Join(t.TempDir(), "ipamd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HAVIP_GRPC_ADDR=127.0.0.1:0", "HAVIP_ETCD_ENDPOINTS="+endpoint)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	lines := bufio.NewScanner(stderr)
	var addr string
	var logged []string
	for addr == "" && lines.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(lines.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", lines.Text())
		}
		logged = append(logged, lines.Text())
		if rec["msg"] == "grpc serving" {
			addr, _ = rec["addr"].(string)
		}
	}
	if addr == "" {
		t.Fatalf("never served; logged %v", logged)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := tenant.Outgoing(context.Background(), "acct-bin")
	if _, err := ipamv1.NewIpamServiceClient(conn).CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	all := strings.Join(rest, "\n")
	if !strings.Contains(all, `"grpc draining"`) || !strings.Contains(all, `"grpc stopped"`) {
		t.Errorf("no graceful stop in the log:\n%s", all)
	}
}
