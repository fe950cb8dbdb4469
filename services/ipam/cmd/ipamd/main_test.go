package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/proctest"
	"github.com/openhavip/havip/platform/tenant"
)

// TestBinaryServesAndStopsOnSIGTERM runs the real ipamd binary: it serves mTLS with the files its
// settings name, takes an account from an API key (Bearer) or from an operator's assertion but
// not from an agent's, logs JSON lines, and on SIGTERM drains and exits 0.
func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	endpoint, stopEtcd, err := etcdtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stopEtcd()
	files := mtlstest.Files(t, identity.ID{Kind: identity.Service, Name: "ipamd"})
	key := apikey.New()
	keysFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keysFile, []byte(apikey.Line("acct-key", key)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, proctest.Build(t, "."), "HAVIP_GRPC_ADDR=127.0.0.1:0", "HAVIP_ETCD_ENDPOINTS="+endpoint, "HAVIP_INSECURE_ETCD=true", // the test etcd is plaintext
		"HAVIP_TLS_CA="+files.CA, "HAVIP_TLS_CERT="+files.Cert, "HAVIP_TLS_KEY="+files.Key, "HAVIP_API_KEYS_FILE="+keysFile)
	ipam := ipamv1.NewIpamServiceClient(etcdtest.DialAs(t, p.Addr, mtlstest.Operator))
	ctx := tenant.Outgoing(context.Background(), "acct-bin")
	if _, err := ipam.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	kctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
	if _, err := ipam.CreateVpc(kctx, &ipamv1.CreateVpcRequest{VpcName: "k", CidrBlock: "10.1.0.0/16"}); err != nil {
		t.Fatalf("with an API key: %v", err)
	}
	agent := ipamv1.NewIpamServiceClient(etcdtest.DialAs(t, p.Addr, mtlstest.Agent("h1")))
	if _, err := agent.DescribeVpcs(ctx, &ipamv1.DescribeVpcsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("an agent asserting an account: %v, want PermissionDenied", err)
	}
	if r, err := agent.DescribeVpcs(kctx, &ipamv1.DescribeVpcsRequest{}); err != nil || len(r.GetVpcSet()) != 1 || r.GetVpcSet()[0].GetVpcName() != "k" {
		t.Errorf("an agent with an API key: %v, %v; want the key's account's one VPC", r, err)
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
		"  -etcd list\n", "env HAVIP_ETCD_ENDPOINTS, default https://127.0.0.1:2379\n",
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
