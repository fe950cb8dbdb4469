// Package mtls makes the TLS 1.3 credentials, with client certificates, of every gRPC hop, re-reading its files when they change.
package mtls

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/openhavip/havip/platform/identity"
)

// Files are the PEM files of one identity: the CA it trusts, its certificate and its key.
type Files struct {
	CA, Cert, Key string
}

// DefaultCheckEvery is how often, at most, a Source looks at its files for a change.
const DefaultCheckEvery = time.Second

// Source holds one identity's certificate and trusted CA, re-read from their files when
// they change: a handshake made after the change uses the new ones, and connections already
// up keep theirs, so no call in flight fails. A file that cannot be read or parsed leaves the
// previous material in use (logged) until it can.
type Source struct {
	files      Files
	log        *slog.Logger
	checkEvery time.Duration
	unchecked  bool // LoadUnchecked: the certificate is not checked, and may be absent
	pairOnly   bool // LoadKeyPair: a certificate and its key, no CA, no identity

	cur atomic.Pointer[material]

	mu      sync.Mutex // serializes checks
	checked time.Time
	stamps  [3]stamp
}

type material struct {
	cert  *tls.Certificate
	roots *x509.CertPool
	id    identity.ID
}

// stamp is what tells a file changed: its contents' hash (not its time and size, which a copy
// may keep).
type stamp [sha256.Size]byte

// Option changes a Source.
type Option func(*Source)

// CheckEvery sets how often, at most, the files are looked at (at each handshake after that
// much time); 0 looks at every handshake.
func CheckEvery(d time.Duration) Option { return func(s *Source) { s.checkEvery = d } }

// Load reads files and returns their Source; the certificate must carry an identity of the
// trust domain and be signed by the CA.
func Load(files Files, log *slog.Logger, opts ...Option) (*Source, error) {
	s := &Source{files: files, log: log, checkEvery: DefaultCheckEvery}
	for _, o := range opts {
		o(s)
	}
	return s.start()
}

// start reads the files for the first time.
func (s *Source) start() (*Source, error) {
	stamps, err := s.stat()
	if err != nil {
		return nil, err
	}
	m, err := s.read()
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	s.stamps, s.checked = stamps, time.Now()
	return s, nil
}

// LoadUnchecked is Load without the checks of the certificate (its identity, its validity
// under the CA), and with no certificate at all when files.Cert is empty: for tests that play
// a party the other side must refuse. Never for a real process.
func LoadUnchecked(files Files, log *slog.Logger) (*Source, error) {
	s := &Source{files: files, log: log, checkEvery: time.Hour, unchecked: true}
	return s.start()
}

// LoadKeyPair reads a certificate and its key alone, to serve HTTPS with (HTTPSConfig): no CA,
// no identity; re-read when the files change, as any Source.
func LoadKeyPair(cert, key string, log *slog.Logger) (*Source, error) {
	s := &Source{files: Files{Cert: cert, Key: key}, log: log, checkEvery: DefaultCheckEvery, pairOnly: true}
	return s.start()
}

// HTTPSConfig is the TLS configuration of an HTTPS server with the current certificate (TLS
// 1.2 or later, for browsers and curl; no client certificate).
func (s *Source) HTTPSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.material().cert, nil
		},
	}
}

// Identity is the identity of the current certificate.
func (s *Source) Identity() identity.ID { return s.material().id }

// Files are the files s reads.
func (s *Source) Files() Files { return s.files }

func (s *Source) stat() ([3]stamp, error) {
	var out [3]stamp
	for i, p := range []string{s.files.CA, s.files.Cert, s.files.Key} {
		if p == "" { // a key pair has no CA; a bad party in a test may have no certificate
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return out, fmt.Errorf("tls files: %w", err)
		}
		out[i] = sha256.Sum256(b)
	}
	return out, nil
}

func (s *Source) read() (*material, error) {
	if s.pairOnly {
		cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
		if err != nil {
			return nil, fmt.Errorf("read certificate and key: %w", err)
		}
		return &material{cert: &cert}, nil
	}
	caPEM, err := os.ReadFile(s.files.CA)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no PEM certificate", s.files.CA)
	}
	if s.unchecked && s.files.Cert == "" {
		return &material{cert: &tls.Certificate{}, roots: roots}, nil
	}
	cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return nil, fmt.Errorf("read certificate and key: %w", err)
	}
	if s.unchecked {
		id, _ := identity.FromCert(cert.Leaf)
		return &material{cert: &cert, roots: roots, id: id}, nil
	}
	id, err := identity.FromCert(cert.Leaf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.files.Cert, err)
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%s is not valid under %s: %w", s.files.Cert, s.files.CA, err)
	}
	return &material{cert: &cert, roots: roots, id: id}, nil
}

// material returns the current material, first re-reading the files if they changed.
func (s *Source) material() *material {
	s.refresh()
	return s.cur.Load()
}

// refresh re-reads the files when they changed since the last look (at most every
// checkEvery). On a failure the old material stays, and the files are read again at the
// next look.
func (s *Source) refresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.checked) < s.checkEvery {
		return
	}
	s.checked = time.Now()
	stamps, err := s.stat()
	if err != nil {
		s.log.Warn("tls files unreadable; keeping the previous certificate", "err", err)
		return
	}
	if stamps == s.stamps {
		return
	}
	m, err := s.read()
	if err != nil {
		s.log.Warn("tls files changed but do not load; keeping the previous certificate", "err", err)
		return
	}
	s.cur.Store(m)
	s.stamps = stamps
	s.log.Info("tls certificate reloaded", "identity", m.id.String(), "not_after", m.cert.Leaf.NotAfter)
}

// verify checks a peer's certificate chain against the current CA for usage (and serverName,
// when it is not empty) and that it carries an identity: a service's, for a server.
func (s *Source) verify(cs tls.ConnectionState, usage x509.ExtKeyUsage, serverName string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: s.material().roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}, DNSName: serverName}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("certificate %q (%v): %w", leaf.Subject.CommonName, leaf.URIs, err)
	}
	id, err := identity.FromCert(leaf)
	if err != nil {
		return err
	}
	if usage == x509.ExtKeyUsageServerAuth && id.Kind != identity.Service {
		return fmt.Errorf("the server's certificate is %s's, not a service's", id)
	}
	return nil
}

// ServerConfig is the TLS configuration of a server: TLS 1.3 only, a client certificate of the
// CA with an identity required.
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.material().cert, nil
		},
		ClientAuth: tls.RequireAnyClientCert, // verified below, against the CA as it is now
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.verify(cs, x509.ExtKeyUsageClientAuth, "")
		},
	}
}

// ClientConfig is a TLS configuration for a client of another protocol (etcd): TLS 1.3 only,
// presenting the current certificate, and checking the server's against the CA as it was when
// ClientConfig was called (a new CA needs a new client). gRPC clients use ClientCredentials,
// which follow the CA too.
func (s *Source) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.material().cert, nil
		},
		RootCAs: s.material().roots,
	}
}

// clientConfig is the TLS configuration of a handshake with serverName: TLS 1.3 only,
// presenting the current certificate, and checking the server's against the current CA and
// serverName.
func (s *Source) clientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.material().cert, nil
		},
		// The chain is verified below, against the CA as it is now (the standard check would
		// keep the CA the config was made with).
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.verify(cs, x509.ExtKeyUsageServerAuth, serverName)
		},
	}
}

// clientCreds makes each handshake's configuration for the server name dialed.
type clientCreds struct {
	credentials.TransportCredentials // Info, for the security protocol
	s                                *Source
	serverName                       string // overrides the authority's host when set
}

func (c *clientCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	name := c.serverName
	if name == "" {
		name = authority
		if host, _, err := net.SplitHostPort(authority); err == nil {
			name = host
		}
	}
	return credentials.NewTLS(c.s.clientConfig(name)).ClientHandshake(ctx, authority, raw)
}

func (c *clientCreds) Clone() credentials.TransportCredentials {
	return &clientCreds{TransportCredentials: c.TransportCredentials.Clone(), s: c.s, serverName: c.serverName}
}

// OverrideServerName is deprecated in grpc but part of the interface.
func (c *clientCreds) OverrideServerName(name string) error { //nolint:staticcheck // interface
	c.serverName = name
	return nil
}

// ServerCredentials are the gRPC server credentials of s (plaintext when s is nil); refused
// handshakes are logged with the peer's address.
func ServerCredentials(s *Source, log *slog.Logger) credentials.TransportCredentials {
	if s == nil {
		return insecure.NewCredentials()
	}
	return logged{TransportCredentials: credentials.NewTLS(s.ServerConfig()), log: log}
}

// ClientCredentials are the gRPC client credentials of s (plaintext when s is nil).
func ClientCredentials(s *Source) credentials.TransportCredentials {
	if s == nil {
		return insecure.NewCredentials()
	}
	return &clientCreds{TransportCredentials: credentials.NewTLS(s.clientConfig("")), s: s}
}

// DialOption is grpc.WithTransportCredentials(ClientCredentials(s)).
func DialOption(s *Source) grpc.DialOption {
	return grpc.WithTransportCredentials(ClientCredentials(s))
}

// logged logs the handshakes a server refuses.
type logged struct {
	credentials.TransportCredentials
	log *slog.Logger
}

func (l logged) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := l.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		l.log.Warn("tls handshake refused", "peer", raw.RemoteAddr().String(), "err", err)
	}
	return conn, info, err
}

func (l logged) Clone() credentials.TransportCredentials {
	return logged{TransportCredentials: l.TransportCredentials.Clone(), log: l.log}
}
