// Package mtlstest issues throwaway certificates for tests: one CA per test binary, and a Source for any identity.
package mtlstest

import (
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/pki"
)

var (
	caOnce sync.Once
	ca     *pki.CA
	caErr  error
)

// CA is the test binary's CA, made at the first call.
func CA(tb testing.TB) *pki.CA {
	tb.Helper()
	caOnce.Do(func() { ca, caErr = pki.NewCA() })
	if caErr != nil {
		tb.Fatal(caErr)
	}
	return ca
}

// Hosts are the names a test server's certificate is valid for.
var Hosts = []string{"127.0.0.1", "localhost"}

// Files writes the CA and a certificate for id (valid for Hosts) to a fresh temporary
// directory of the test, and names them.
func Files(tb testing.TB, id identity.ID) mtls.Files {
	tb.Helper()
	return FilesFrom(tb, CA(tb), id)
}

// FilesFrom is Files with the certificate issued by c (for a wrong-CA test).
func FilesFrom(tb testing.TB, c *pki.CA, id identity.ID) mtls.Files {
	tb.Helper()
	leaf, err := c.Issue(id, Hosts, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	if err := pki.WriteFile(filepath.Join(dir, pki.CACert), CA(tb).PEM, 0o644); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := leaf.Write(dir, "leaf"); err != nil {
		tb.Fatal(err)
	}
	return mtls.InDir(dir, "leaf")
}

// Source is a Source for id under the test binary's CA.
func Source(tb testing.TB, id identity.ID) *mtls.Source {
	tb.Helper()
	s, err := mtls.Load(Files(tb, id), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Identities of each kind, for tests.
var (
	Service   = identity.ID{Kind: identity.Service, Name: "havip-suite"} // a test replica runs every service, as the suite does
	Gateway   = identity.ID{Kind: identity.Gateway}
	Operator  = identity.ID{Kind: identity.Operator}
	DataPlane = identity.ID{Kind: identity.DataPlane, Name: "test-natd"}
	Client    = identity.ID{Kind: identity.Client, Name: "test-ghz"}
)

// Agent is the identity of the agent of host.
func Agent(host string) identity.ID { return identity.ID{Kind: identity.Agent, Name: host} }

// Env is the environment that gives a daemon a certificate for id (HAVIP_TLS_CA, _CERT, _KEY),
// for tests that run the real binaries.
func Env(tb testing.TB, id identity.ID) []string {
	tb.Helper()
	f := Files(tb, id)
	return []string{"HAVIP_TLS_CA=" + f.CA, "HAVIP_TLS_CERT=" + f.Cert, "HAVIP_TLS_KEY=" + f.Key}
}
