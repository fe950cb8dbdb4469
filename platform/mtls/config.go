package mtls

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/openhavip/havip/platform/config"
)

// Config names a process's TLS files, or asks for plaintext (development only).
type Config struct {
	// CA is the CA certificate the process trusts (-ca, HAVIP_TLS_CA).
	CA string
	// Cert and Key are the process's certificate and key (-cert, HAVIP_TLS_CERT; -key,
	// HAVIP_TLS_KEY).
	Cert, Key string
	// Plaintext serves and calls without TLS: anyone who reaches the port is trusted as every
	// identity. For development only (-insecure-plaintext, HAVIP_INSECURE_PLAINTEXT).
	Plaintext bool
}

var (
	caSetting        = config.Setting{Flag: "ca", Env: "HAVIP_TLS_CA"}
	certSetting      = config.Setting{Flag: "cert", Env: "HAVIP_TLS_CERT"}
	keySetting       = config.Setting{Flag: "key", Env: "HAVIP_TLS_KEY"}
	plaintextSetting = config.Setting{Flag: "insecure-plaintext", Env: "HAVIP_INSECURE_PLAINTEXT"}
)

// DefaultDir is where the files are looked for when no setting names them.
const DefaultDir = "certs"

// InDir names the files of identity name in dir: ca.crt, name.crt and name.key.
func InDir(dir, name string) Files {
	return Files{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
}

// RegisterFlags registers the settings on fs; the default files are those of name in
// DefaultDir (certs/ca.crt, certs/<name>.crt, certs/<name>.key).
func (c *Config) RegisterFlags(fs *flag.FlagSet, name string) {
	d := InDir(DefaultDir, name)
	for _, f := range []struct {
		p   *string
		def string
	}{{&c.CA, d.CA}, {&c.Cert, d.Cert}, {&c.Key, d.Key}} {
		if *f.p == "" {
			*f.p = f.def
		}
	}
	config.String(fs, &c.CA, caSetting, "CA certificate (PEM) this process trusts; re-read when it changes")
	config.String(fs, &c.Cert, certSetting, "this process's certificate (PEM), with its SPIFFE identity; re-read when it changes")
	config.String(fs, &c.Key, keySetting, "this process's private key (PEM); re-read when it changes")
	config.Bool(fs, &c.Plaintext, plaintextSetting, "DEVELOPMENT ONLY: no TLS; every caller that reaches the port is trusted as any identity")
}

// Validate reports the first setting that is not valid.
func (c Config) Validate() error {
	if c.Plaintext {
		return nil
	}
	for _, f := range []struct {
		s config.Setting
		v string
	}{{caSetting, c.CA}, {certSetting, c.Cert}, {keySetting, c.Key}} {
		if f.v == "" {
			return f.s.Errorf(f.v, "required (or -insecure-plaintext for development)")
		}
	}
	return nil
}

// Load reads the files; it returns nil, and no error, for plaintext.
func (c Config) Load(log *slog.Logger) (*Source, error) {
	if c.Plaintext {
		log.Warn("plaintext: TLS is off and every caller is trusted as any identity (development only)")
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s, err := Load(Files{CA: c.CA, Cert: c.Cert, Key: c.Key}, log)
	if err != nil {
		return nil, errors.Join(err, errors.New("make certificates with havip-cert, or name them with -ca, -cert and -key"))
	}
	return s, nil
}

// PlaintextOnLoopback refuses plaintext (development) on an address other hosts can reach: in
// plaintext every caller is trusted as any identity.
func PlaintextOnLoopback(plaintext bool, addr string) error {
	if !plaintext {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip, err := netip.ParseAddr(host); host == "localhost" || err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("plaintext (-insecure-plaintext) serves on loopback only, where every caller is this machine's; %s is not", host)
}
