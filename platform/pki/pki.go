// Package pki makes the platform's local certificate authority and issues its certificates, one SPIFFE identity each.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/openhavip/havip/platform/identity"
)

// File names in a certificates directory.
const (
	CACert = "ca.crt"
	CAKey  = "ca.key"
)

// Validity periods.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	LeafValidity = 365 * 24 * time.Hour
)

// CA is a certificate authority: its certificate and signing key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// PEM is the certificate, PEM-encoded.
	PEM []byte
}

// NewCA makes a CA in memory (for tests; CreateCA writes one to a directory).
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "havip local CA", Organization: []string{"havip"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// CreateCA makes a CA and writes it to dir (ca.crt, and ca.key readable by the owner only). It
// refuses to replace a CA already there.
func CreateCA(dir string) (*CA, error) {
	if _, err := os.Stat(filepath.Join(dir, CACert)); err == nil {
		return nil, fmt.Errorf("%s already holds a CA; remove it first to make a new one", dir)
	}
	ca, err := NewCA()
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(ca.Key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certificates directory: %w", err)
	}
	if err := WriteFile(filepath.Join(dir, CAKey), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := WriteFile(filepath.Join(dir, CACert), ca.PEM, 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

// LoadCA reads the CA of dir.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACert))
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKey))
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("CA key: no PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok || !cert.IsCA {
		return nil, errors.New("the CA files are not a CA certificate and its key")
	}
	return &CA{Cert: cert, Key: signer, PEM: certPEM}, nil
}

// OpenCA loads the CA of dir, making it first when dir has none; created says which.
func OpenCA(dir string) (ca *CA, created bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, CACert)); errors.Is(err, os.ErrNotExist) {
		ca, err := CreateCA(dir)
		return ca, err == nil, err
	}
	ca, err = LoadCA(dir)
	return ca, false, err
}

// Leaf is an issued certificate and its key, PEM-encoded.
type Leaf struct {
	CertPEM, KeyPEM []byte
}

// Issue makes a certificate for id, valid for validity from now: to call (TLS client auth),
// and for a service or the gateway also to serve as hosts (DNS names or IP addresses).
func (ca *CA) Issue(id identity.ID, hosts []string, validity time.Duration) (Leaf, error) {
	return ca.issue(id, hosts, time.Now().Add(-time.Minute), time.Now().Add(validity))
}

// IssueWindow is Issue with the validity window given: for tests of expired and not yet valid
// certificates.
func (ca *CA) IssueWindow(id identity.ID, hosts []string, notBefore, notAfter time.Time) (Leaf, error) {
	return ca.issue(id, hosts, notBefore, notAfter)
}

func (ca *CA) issue(id identity.ID, hosts []string, notBefore, notAfter time.Time) (Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Leaf{}, fmt.Errorf("key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return Leaf{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id.String(), Organization: []string{"havip"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages(id.Kind),
		URIs:         []*url.URL{id.URI()},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return Leaf{}, fmt.Errorf("certificate for %s: %w", id, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Leaf{}, err
	}
	return Leaf{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: keyPEM}, nil
}

// usages are what a certificate of kind k may be used for: services (which also call) and the
// gateway (HTTPS) serve; every kind calls.
func usages(k identity.Kind) []x509.ExtKeyUsage {
	if k == identity.Service || k == identity.Gateway {
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
}

// Write stores the leaf as dir/name.crt and dir/name.key (the key readable by the owner
// only), each replaced atomically; it returns the two paths.
func (l Leaf) Write(dir, name string) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("certificates directory: %w", err)
	}
	if err := WriteFile(keyPath, l.KeyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := WriteFile(certPath, l.CertPEM, 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// Usable reports whether dir/name.crt is a certificate of ca for id that stays valid for at
// least margin more: a start that finds it so keeps it rather than issuing a new one.
func Usable(ca *CA, dir, name string, id identity.ID, margin time.Duration) bool {
	certPEM, err := os.ReadFile(filepath.Join(dir, name+".crt"))
	if err != nil {
		return false
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")); err != nil {
		return false // no key, or not this certificate's (a write cut between the two files)
	}
	cert, err := ParseCert(certPEM)
	if err != nil || time.Now().Add(margin).After(cert.NotAfter) || cert.CheckSignatureFrom(ca.Cert) != nil {
		return false
	}
	got, err := identity.FromCert(cert)
	return err == nil && got == id
}

// ParseCert reads the first certificate of a PEM file.
func ParseCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// WriteFile writes b to path atomically (a temporary file renamed over it), so a reader sees
// the old content or the new, never a part.
func WriteFile(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func encodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n, nil
}
