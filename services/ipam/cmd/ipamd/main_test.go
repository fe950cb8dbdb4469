package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/proctest"
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
	p := proctest.Start(t, proctest.Build(t, "."), "HAVIP_GRPC_ADDR=127.0.0.1:0", "HAVIP_ETCD_ENDPOINTS="+endpoint)
	conn, err := grpc.NewClient(p.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := tenant.Outgoing(context.Background(), "acct-bin")
	if _, err := ipamv1.NewIpamServiceClient(conn).CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	log := p.Log()
	for _, l := range log {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", l)
		}
	}
	all := strings.Join(log, "\n")
	if !strings.Contains(all, `"grpc draining"`) || !strings.Contains(all, `"grpc stopped"`) {
		t.Errorf("no graceful stop in the log:\n%s", all)
	}
}

// TestBinarySettings runs the real ipamd binary: -h lists every setting with its variable and
// default and exits 0; a setting that is not valid stops it at start with exit code 2 and a
// message naming the flag and the variable.
func TestBinarySettings(t *testing.T) {
	bin := proctest.Build(t, ".")
	out, err := exec.Command(bin, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("-h: %v\n%s", err, out)
	}
	for _, want := range []string{
		"  -etcd list\n", "env HAVIP_ETCD_ENDPOINTS, default http://127.0.0.1:2379\n",
		"  -grpc-addr string\n", "env HAVIP_GRPC_ADDR, default 127.0.0.1:50051\n",
		"  -log-level string\n", "env HAVIP_LOG_LEVEL, default info\n",
		"OTEL_EXPORTER_OTLP_ENDPOINT",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("-h lacks %q:\n%s", want, out)
		}
	}
	cmd := exec.Command(bin)
	cmd.Env = append(cmd.Environ(), "HAVIP_LOG_LEVEL=loud")
	out, err = cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("with HAVIP_LOG_LEVEL=loud: %v, want exit code 2\n%s", err, out)
	}
	if want := `ipamd: -log-level (HAVIP_LOG_LEVEL) = "loud": want debug, info, warn or error`; !strings.Contains(string(out), want) {
		t.Errorf("with HAVIP_LOG_LEVEL=loud: got\n%s\nwant %q", out, want)
	}
}
