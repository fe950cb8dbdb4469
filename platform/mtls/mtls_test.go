package mtls_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/logging/logtest"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/pki"
)

// serveHealth serves gRPC health over mTLS with src on 127.0.0.1:0, logging to log.
func serveHealth(t *testing.T, src *mtls.Source, log *logtest.Buffer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(mtls.ServerCredentials(src, slog.New(slog.NewTextHandler(log, nil)))))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func checkHealth(ctx context.Context, addr string, opt grpc.DialOption) error {
	conn, err := grpc.NewClient(addr, opt)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// writeCert writes a certificate signed by ca from tmpl (and its key) to dir, and names the
// files with the test CA.
func writeCert(t *testing.T, ca *pki.CA, tmpl *x509.Certificate) mtls.Files {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pki.Leaf{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
	dir := t.TempDir()
	if _, _, err := leaf.Write(dir, "leaf"); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteFile(filepath.Join(dir, pki.CACert), mtlstest.CA(t).PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return mtls.InDir(dir, "leaf")
}

// TestRefusedConnections: a client without a certificate, with one of another CA, an expired
// one, one without an identity or of another trust domain, or in plaintext, is refused at the
// handshake, and the server logs it with the peer's address; a client refuses a server whose
// certificate is of another CA or not valid for the name dialed. A good client gets through.
func TestRefusedConnections(t *testing.T) {
	var log logtest.Buffer
	addr := serveHealth(t, mtlstest.Source(t, mtlstest.Service), &log)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := checkHealth(ctx, addr, mtls.DialOption(mtlstest.Source(t, mtlstest.Operator))); err != nil {
		t.Fatalf("a good client: %v", err)
	}
	otherCA, err := pki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	serial := big.NewInt(time.Now().UnixNano())
	tmpl := func(uris ...string) *x509.Certificate {
		c := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "t"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
		for _, u := range uris {
			p, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			c.URIs = append(c.URIs, p)
		}
		return c
	}
	expired := tmpl("spiffe://havip.local/operator")
	expired.NotBefore, expired.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)

	for _, tc := range []struct {
		name string
		dial func(t *testing.T) grpc.DialOption
	}{
		{"plaintext", func(*testing.T) grpc.DialOption { return grpc.WithTransportCredentials(insecure.NewCredentials()) }},
		{"no client certificate", func(t *testing.T) grpc.DialOption {
			// TLS that trusts the server but presents nothing: a Source's files minus the certificate.
			return mtls.DialOption(clientWithoutCert(t))
		}},
		{"another CA", func(t *testing.T) grpc.DialOption {
			return mtls.DialOption(loadUnchecked(t, mtlstest.FilesFrom(t, otherCA, mtlstest.Operator)))
		}},
		{"expired", func(t *testing.T) grpc.DialOption {
			return mtls.DialOption(loadUnchecked(t, writeCert(t, mtlstest.CA(t), expired)))
		}},
		{"no identity", func(t *testing.T) grpc.DialOption {
			return mtls.DialOption(loadUnchecked(t, writeCert(t, mtlstest.CA(t), tmpl())))
		}},
		{"another trust domain", func(t *testing.T) grpc.DialOption {
			return mtls.DialOption(loadUnchecked(t, writeCert(t, mtlstest.CA(t), tmpl("spiffe://example.org/operator"))))
		}},
		{"two identities", func(t *testing.T) grpc.DialOption {
			return mtls.DialOption(loadUnchecked(t, writeCert(t, mtlstest.CA(t), tmpl("spiffe://havip.local/operator", "spiffe://havip.local/service/x"))))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(log.String(), "tls handshake refused")
			if err := checkHealth(ctx, addr, tc.dial(t)); err == nil {
				t.Fatal("the call went through")
			}
			deadline := time.Now().Add(5 * time.Second)
			for strings.Count(log.String(), "tls handshake refused") == before {
				if time.Now().After(deadline) {
					t.Fatalf("the server logged no refusal:\n%s", log.String())
				}
				time.Sleep(5 * time.Millisecond) // the server logs after the client sees the failure
			}
			if !strings.Contains(log.String(), "peer=127.0.0.1:") {
				t.Errorf("the refusal is logged without the peer:\n%s", log.String())
			}
		})
	}

	// The client checks the server too.
	for _, tc := range []struct {
		name   string
		server mtls.Files
	}{
		{"server of another CA", mtlstest.FilesFrom(t, otherCA, mtlstest.Service)},
		{"server of another kind (an agent's certificate that could serve)", writeCert(t, mtlstest.CA(t), func() *x509.Certificate {
			c := tmpl("spiffe://havip.local/agent/h1")
			c.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			return c
		}())},
		{"server with a client-only certificate", mtlstest.Files(t, mtlstest.Operator)},
		{"server not valid for the name dialed", writeCert(t, mtlstest.CA(t), func() *x509.Certificate {
			c := tmpl("spiffe://havip.local/service/elsewhere")
			c.DNSNames = []string{"elsewhere.example"}
			return c
		}())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var badLog logtest.Buffer
			bad := serveHealth(t, loadUnchecked(t, tc.server), &badLog)
			err := checkHealth(ctx, bad, mtls.DialOption(mtlstest.Source(t, mtlstest.Operator)))
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("got %v, want a refusal naming the certificate", err)
			}
		})
	}
}

// loadUnchecked loads files whose certificate a Source would refuse to load as its own (an
// expired one, one without an identity): for playing a bad party.
func loadUnchecked(t *testing.T, f mtls.Files) *mtls.Source {
	t.Helper()
	s, err := mtls.LoadUnchecked(f, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clientWithoutCert is a client Source that presents no certificate.
func clientWithoutCert(t *testing.T) *mtls.Source {
	t.Helper()
	s, err := mtls.LoadUnchecked(mtls.Files{CA: mtlstest.Files(t, mtlstest.Operator).CA}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPeerIdentity: a client reads the server's identity from its verified certificate.
func TestPeerIdentity(t *testing.T) {
	var log logtest.Buffer
	addr := serveHealth(t, mtlstest.Source(t, mtlstest.Service), &log)
	conn, err := grpc.NewClient(addr, mtls.DialOption(mtlstest.Source(t, mtlstest.Agent("h7"))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var p peer.Peer
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		t.Fatal(err)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		t.Fatalf("no TLS: %T", p.AuthInfo)
	}
	if id, err := identity.FromCert(info.State.PeerCertificates[0]); err != nil || id != mtlstest.Service {
		t.Errorf("the client sees the server as %v (%v), want %v", id, err, mtlstest.Service)
	}
}

// TestHTTPSKeyPairReloads: the HTTPS certificate is re-read when its files change: the next
// connection shows the new one, without a restart.
func TestHTTPSKeyPairReloads(t *testing.T) {
	dir := t.TempDir()
	issue := func() *x509.Certificate {
		leaf, err := mtlstest.CA(t).Issue(mtlstest.Gateway, mtlstest.Hosts, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := leaf.Write(dir, "https"); err != nil {
			t.Fatal(err)
		}
		c, err := pki.ParseCert(leaf.CertPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := issue()
	src, err := mtls.LoadKeyPair(filepath.Join(dir, "https.crt"), filepath.Join(dir, "https.key"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", src.HTTPSConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(mtlstest.CA(t).Cert)
	served := func() *x509.Certificate {
		t.Helper()
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}
		resp, err := client.Get("https://" + lis.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.TLS.PeerCertificates[0]
	}
	if got := served(); !got.Equal(first) {
		t.Fatal("the server does not show its certificate")
	}
	second := issue()
	deadline := time.Now().Add(5 * time.Second)
	for !served().Equal(second) {
		if time.Now().After(deadline) {
			t.Fatal("the new certificate was not picked up")
		}
		time.Sleep(50 * time.Millisecond) // the files are looked at once a second at most
	}
}
