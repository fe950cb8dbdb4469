package main

import (
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/pki"
)

// havipCert runs the command with args and returns what it printed.
func havipCert(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(args, &out, io.Discard)
	return out.String(), err
}

// mustRun runs the command and fails the test when it fails.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := havipCert(t, args...)
	if err != nil {
		t.Fatalf("havip-cert %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// readCert parses the certificate at path and returns its identity and hosts, sorted.
func readCert(t *testing.T, path string) (identity.ID, []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.ParseCert(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	id, err := identity.FromCert(c)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	hosts := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	slices.Sort(hosts)
	return id, hosts
}

// snapshot reads every file under dir, by path relative to it.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var composeSet = []string{
	"etcd/service:etcd@etcd,localhost,127.0.0.1",
	"ipamd/service:ipamd@ipamd,localhost,127.0.0.1",
	"gatewayd/gateway@gatewayd,localhost,127.0.0.1",
	"operator/operator",
	"agents/agent:host-a",
	"agents/agent:host-b",
}

func TestInitMakesTheSetOnceAndKeepsIt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	out := mustRun(t, append([]string{"-dir", dir, "init"}, composeSet...)...)
	if !strings.Contains(out, "made a CA") || strings.Count(out, "issued ") != len(composeSet) {
		t.Fatalf("first init printed:\n%s", out)
	}
	want := map[string]struct {
		id    identity.ID
		hosts []string
	}{
		"etcd/etcd.crt":           {identity.ID{Kind: identity.Service, Name: "etcd"}, []string{"127.0.0.1", "etcd", "localhost"}},
		"ipamd/ipamd.crt":         {identity.ID{Kind: identity.Service, Name: "ipamd"}, []string{"127.0.0.1", "ipamd", "localhost"}},
		"gatewayd/gateway.crt":    {identity.ID{Kind: identity.Gateway}, []string{"127.0.0.1", "gatewayd", "localhost"}},
		"operator/operator.crt":   {identity.ID{Kind: identity.Operator}, nil},
		"agents/agent-host-a.crt": {identity.ID{Kind: identity.Agent, Name: "host-a"}, nil},
		"agents/agent-host-b.crt": {identity.ID{Kind: identity.Agent, Name: "host-b"}, nil},
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, pki.CACert))
	if err != nil {
		t.Fatal(err)
	}
	for path, w := range want {
		id, hosts := readCert(t, filepath.Join(dir, path))
		if id != w.id || !slices.Equal(hosts, w.hosts) {
			t.Errorf("%s: %s for %v, want %s for %v", path, id, hosts, w.id, w.hosts)
		}
		key, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(path, ".crt")+".key"))
		if err != nil || key.Mode().Perm() != 0o600 {
			t.Errorf("%s's key: %v, %v; want mode 0600", path, key, err)
		}
		caCopy, err := os.ReadFile(filepath.Join(dir, filepath.Dir(path), pki.CACert))
		if err != nil || !bytes.Equal(caCopy, caPEM) {
			t.Errorf("%s has no copy of the CA beside it (%v)", path, err)
		}
	}
	for _, sub := range []string{"etcd", "ipamd", "gatewayd", "operator", "agents"} {
		if _, err := os.Stat(filepath.Join(dir, sub, pki.CAKey)); err == nil {
			t.Errorf("the CA's key is in %s", sub)
		}
	}

	// Again: everything kept, not a byte changed.
	before := snapshot(t, dir)
	out = mustRun(t, append([]string{"-dir", dir, "init"}, composeSet...)...)
	if !strings.Contains(out, "kept the CA") || strings.Count(out, "kept ") != len(composeSet)+1 {
		t.Fatalf("second init printed:\n%s", out)
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Fatal("a second init changed files")
	}

	// Other hosts for etcd: only etcd's certificate is issued again.
	set := slices.Clone(composeSet)
	set[0] = "etcd/service:etcd@etcd,etcd-0"
	out = mustRun(t, append([]string{"-dir", dir, "init"}, set...)...)
	if strings.Count(out, "issued ") != 1 || !strings.Contains(out, "issued spiffe://havip.local/service/etcd") {
		t.Fatalf("init with new hosts for etcd printed:\n%s", out)
	}
	if _, hosts := readCert(t, filepath.Join(dir, "etcd/etcd.crt")); !slices.Equal(hosts, []string{"etcd", "etcd-0"}) {
		t.Fatalf("etcd's certificate serves as %v", hosts)
	}

	// A new CA (the old one removed): every certificate is issued again, by it.
	for _, f := range []string{pki.CACert, pki.CAKey} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	out = mustRun(t, append([]string{"-dir", dir, "init"}, composeSet...)...)
	if !strings.Contains(out, "made a CA") || strings.Count(out, "issued ") != len(composeSet) {
		t.Fatalf("init after a new CA printed:\n%s", out)
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !pki.Usable(ca, filepath.Join(dir, "operator"), "operator", identity.ID{Kind: identity.Operator}, 0) {
		t.Fatal("the operator's certificate is not the new CA's")
	}
}

func TestInitKeepsACAMadeByCreateCA(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "-dir", dir, "create-ca")
	caPEM, err := os.ReadFile(filepath.Join(dir, pki.CACert))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := havipCert(t, "-dir", dir, "create-ca"); err == nil {
		t.Fatal("create-ca replaced a CA")
	}
	out := mustRun(t, "-dir", dir, "init", "service:ipamd")
	if !strings.Contains(out, "kept the CA") {
		t.Fatalf("init printed:\n%s", out)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, pki.CACert)); !bytes.Equal(now, caPEM) {
		t.Fatal("init replaced the CA")
	}
	// No subdirectory: the files land in -dir, with no copy of the CA needed.
	if id, hosts := readCert(t, filepath.Join(dir, "ipamd.crt")); id.String() != "spiffe://havip.local/service/ipamd" || !slices.Equal(hosts, []string{"127.0.0.1", "localhost"}) {
		t.Fatalf("ipamd.crt: %s for %v", id, hosts)
	}
}

func TestInitRefusesBadArgumentsBeforeWriting(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"operator", "service"},       // a service needs a name
		{"operator", "ops/nobody"},    // unknown kind
		{"operator", "dev:x"},         // no certificate carries dev
		{"operator", "../x/operator"}, // outside -dir
		{"operator", "/x/operator"},
		{"operator", "service:etcd@"}, // no host
		{"operator", "agent:../x"},
	} {
		dir := filepath.Join(t.TempDir(), "certs")
		if out, err := havipCert(t, append([]string{"-dir", dir, "init"}, args...)...); err == nil {
			t.Errorf("init %q: no error\n%s", args, out)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("init %q wrote %s", args, dir)
		}
	}
	if _, err := havipCert(t, "-dir", t.TempDir(), "-host", "etcd", "init", "service:etcd"); err == nil {
		t.Error("init took -host")
	}
	for _, o := range []string{"65534", "a:b", "1:", ":1", "-1:0"} {
		if _, err := havipCert(t, "-dir", t.TempDir(), "-owner", o, "init", "operator"); err == nil {
			t.Errorf("-owner %q: no error", o)
		}
	}
}

func TestInitGivesTheFilesToOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root may give files away")
	}
	dir := t.TempDir()
	mustRun(t, "-dir", dir, "-owner", "65534:65534", "init", "ipamd/service:ipamd", "operator")
	owned := func(p string) int {
		t.Helper()
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return int(fi.Sys().(*syscall.Stat_t).Uid)
	}
	for _, p := range []string{"ipamd", "ipamd/ca.crt", "ipamd/ipamd.crt", "ipamd/ipamd.key", "operator.crt", "operator.key"} {
		if uid := owned(p); uid != 65534 {
			t.Errorf("%s belongs to uid %d, want 65534", p, uid)
		}
	}
	if uid := owned(pki.CAKey); uid != 0 {
		t.Errorf("the CA's key belongs to uid %d, want the runner's (0)", uid)
	}
	// create-* gives its files too.
	mustRun(t, "-dir", dir, "-owner", "65534:65534", "create-agent", "host-a")
	if uid := owned("agent-host-a.key"); uid != 65534 {
		t.Errorf("create-agent's key belongs to uid %d, want 65534", uid)
	}
}

func TestCreateNamesTheFiles(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "-dir", dir, "create-ca")
	for _, c := range []struct {
		args []string
		file string
		id   string
	}{
		{[]string{"create-service", "eipd"}, "eipd.crt", "spiffe://havip.local/service/eipd"},
		{[]string{"create-gateway"}, "gateway.crt", "spiffe://havip.local/gateway"},
		{[]string{"create-gateway", "edge"}, "gateway-edge.crt", "spiffe://havip.local/gateway/edge"},
		{[]string{"create-agent", "host-a"}, "agent-host-a.crt", "spiffe://havip.local/agent/host-a"},
		{[]string{"create-operator", "alice"}, "operator-alice.crt", "spiffe://havip.local/operator/alice"},
		{[]string{"create-dataplane", "natd"}, "dataplane-natd.crt", "spiffe://havip.local/dataplane/natd"},
	} {
		mustRun(t, append([]string{"-dir", dir}, c.args...)...)
		if id, _ := readCert(t, filepath.Join(dir, c.file)); id.String() != c.id {
			t.Errorf("%v: %s is %s, want %s", c.args, c.file, id, c.id)
		}
	}
	for _, args := range [][]string{{"create-service"}, {"create-agent"}, {"create-dev", "x"}, {"create-service", "a", "b"}} {
		if _, err := havipCert(t, append([]string{"-dir", dir}, args...)...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestNoOverwriteOfOthers: a leaf command never writes over the CA's files, nor over the files
// of another identity (a service named like an agent's files).
func TestNoOverwriteOfOthers(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	for _, args := range [][]string{{"create-ca"}, {"create-agent", "host-a"}} {
		if err := run(append([]string{"-dir", dir}, args...), &out, &out); err != nil {
			t.Fatal(err)
		}
	}
	caBefore, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"create-service", "ca"}, {"create-service", "agent-host-a"}, {"init", "service:agent-host-a"}, {"init", "service:ca"}} {
		if err := run(append([]string{"-dir", dir}, args...), &out, &out); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if caAfter, _ := os.ReadFile(filepath.Join(dir, "ca.key")); !bytes.Equal(caBefore, caAfter) {
		t.Error("the CA key was replaced")
	}
	if err := run([]string{"show", filepath.Join(dir, "agent-host-a.crt")}, &out, &out); err != nil || !strings.Contains(out.String(), "identity: spiffe://havip.local/agent/host-a") {
		t.Errorf("the agent's certificate: %v\n%s", err, out.String())
	}
	// The same identity again replaces its own files (rotation).
	if err := run([]string{"-dir", dir, "create-agent", "host-a"}, &out, &out); err != nil {
		t.Errorf("rotation: %v", err)
	}
}
