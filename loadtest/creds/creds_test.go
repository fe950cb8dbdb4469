package creds_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openhavip/havip/loadtest/creds"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/pki"
)

// identityOf loads files and returns their identity.
func identityOf(t *testing.T, f mtls.Files) identity.ID {
	t.Helper()
	src, err := mtls.Load(f, etcdtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	return src.Identity()
}

// issue writes a certificate for id from ca into dir as name.crt and name.key.
func issue(t *testing.T, ca *pki.CA, dir, name string, id identity.ID) {
	t.Helper()
	leaf, err := ca.Issue(id, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := leaf.Write(dir, name); err != nil {
		t.Fatal(err)
	}
}

// TestResolveIssuesWithTheCAKey: with the CA's key at hand (make run's certificates), Resolve
// issues a client identity and an agent identity for the given host.
func TestResolveIssuesWithTheCAKey(t *testing.T) {
	t.Parallel()
	dir, out := t.TempDir(), t.TempDir()
	if _, err := pki.CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	tenant, agent, err := creds.Resolve(dir, out, "host-load")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := identityOf(t, tenant), (identity.ID{Kind: identity.Client, Name: creds.ClientName}); got != want {
		t.Errorf("tenant identity %v, want %v", got, want)
	}
	if got, want := identityOf(t, agent), (identity.ID{Kind: identity.Agent, Name: "host-load"}); got != want {
		t.Errorf("agent identity %v, want %v", got, want)
	}
	if filepath.Dir(tenant.Cert) != out || tenant.CA != filepath.Join(dir, pki.CACert) {
		t.Errorf("tenant files %+v: want the certificate in %s and the CA of %s", tenant, out, dir)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%s holds %d files after Resolve, want the CA's 2: it must not write there", dir, len(entries))
	}
}

// TestResolveTakesWhatIsThere: without the CA's key (make compose-up's build/certs), Resolve
// takes the operator's certificate and the first agent certificate, by name.
func TestResolveTakesWhatIsThere(t *testing.T) {
	t.Parallel()
	caDir, dir := t.TempDir(), t.TempDir()
	ca, err := pki.CreateCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, pki.CACert), ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	issue(t, ca, dir, "operator", identity.ID{Kind: identity.Operator})
	issue(t, ca, dir, "agent-host-b", identity.ID{Kind: identity.Agent, Name: "host-b"})
	issue(t, ca, dir, "agent-host-a", identity.ID{Kind: identity.Agent, Name: "host-a"})
	tenant, agent, err := creds.Resolve(dir, t.TempDir(), "unused")
	if err != nil {
		t.Fatal(err)
	}
	if got := identityOf(t, tenant); got.Kind != identity.Operator {
		t.Errorf("tenant identity %v, want the operator", got)
	}
	if got, want := identityOf(t, agent), (identity.ID{Kind: identity.Agent, Name: "host-a"}); got != want {
		t.Errorf("agent identity %v, want %v", got, want)
	}
}

// TestResolveWithoutAnAgent: a directory with neither the CA's key nor an agent certificate is
// an error naming both.
func TestResolveWithoutAnAgent(t *testing.T) {
	t.Parallel()
	if _, _, err := creds.Resolve(t.TempDir(), t.TempDir(), "h"); err == nil {
		t.Fatal("Resolve of an empty directory: no error")
	}
}
