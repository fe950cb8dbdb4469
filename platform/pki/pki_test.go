package pki_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/pki"
)

// TestCAAndLeaves: a CA is made once (a second CreateCA refuses, OpenCA loads it); a leaf it
// issues carries the identity and names, is usable until near its end, and its key is the
// owner's only.
func TestCAAndLeaves(t *testing.T) {
	dir := t.TempDir()
	ca, created, err := pki.OpenCA(dir)
	if err != nil || !created {
		t.Fatalf("OpenCA: %v, created %v", err, created)
	}
	if _, err := pki.CreateCA(dir); err == nil {
		t.Error("CreateCA replaced a CA")
	}
	again, created, err := pki.OpenCA(dir)
	if err != nil || created || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("OpenCA again: %v, created %v", err, created)
	}
	id := identity.ID{Kind: identity.Service, Name: "ipamd"}
	leaf, err := ca.Issue(id, []string{"ipamd", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath, err := leaf.Write(dir, "ipamd")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi.Mode(), err)
	}
	b, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.ParseCert(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := identity.FromCert(c)
	if err != nil || got != id || len(c.DNSNames) != 1 || c.DNSNames[0] != "ipamd" || len(c.IPAddresses) != 1 || c.CheckSignatureFrom(ca.Cert) != nil {
		t.Errorf("leaf: %v %v, names %v %v", got, err, c.DNSNames, c.IPAddresses)
	}
	if !pki.Usable(ca, dir, "ipamd", id, time.Minute) {
		t.Error("a fresh leaf is not usable")
	}
	if pki.Usable(ca, dir, "ipamd", id, 2*time.Hour) {
		t.Error("a leaf ending within the margin is usable")
	}
	if pki.Usable(ca, dir, "ipamd", identity.ID{Kind: identity.Service, Name: "havipd"}, time.Minute) {
		t.Error("a leaf of another identity is usable")
	}
	other, err := pki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	if pki.Usable(other, dir, "ipamd", id, time.Minute) {
		t.Error("a leaf of another CA is usable")
	}
	if pki.Usable(ca, dir, "nothing", id, time.Minute) {
		t.Error("a missing leaf is usable")
	}
	other2, err := ca.Issue(id, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(keyPath, other2.KeyPEM, 0o600); err != nil { // a write cut between key and certificate
		t.Fatal(err)
	}
	if pki.Usable(ca, dir, "ipamd", id, time.Minute) {
		t.Error("a leaf whose key is another's is usable")
	}
	if _, err := pki.LoadCA(filepath.Join(dir, "nowhere")); err == nil {
		t.Error("LoadCA of an empty directory")
	}
}
