package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/pki"
)

// certSpec is one certificate of init: "[<subdir>/]<kind>[:<name>][@<host>,...]".
type certSpec struct {
	sub   string // directory under -dir; "" for -dir itself
	id    identity.ID
	hosts []string
}

// parseSpec reads one of init's arguments.
func parseSpec(s string) (certSpec, error) {
	var c certSpec
	rest, hosts, hasHosts := strings.Cut(s, "@")
	if hasHosts {
		if c.hosts = config.Split(hosts); len(c.hosts) == 0 {
			return certSpec{}, fmt.Errorf("%q: no host after @", s)
		}
	}
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		c.sub, rest = rest[:i], rest[i+1:]
		if !filepath.IsLocal(c.sub) {
			return certSpec{}, fmt.Errorf("%q: %q is not a directory under -dir", s, c.sub)
		}
	}
	kind, name, _ := strings.Cut(rest, ":")
	if _, ok := prefixes[identity.Kind(kind)]; !ok {
		return certSpec{}, fmt.Errorf("%q: unknown kind %q (want service, gateway, agent, operator, dataplane or client)", s, kind)
	}
	id, err := identity.New(identity.Kind(kind), name)
	if err != nil {
		return certSpec{}, fmt.Errorf("%q: %w", s, err)
	}
	c.id = id
	c.hosts = defaultHosts(id.Kind, c.hosts)
	return c, nil
}

// initSet makes the CA of dir when it has none, then makes sure of each certificate of args:
// kept when still good, issued otherwise, each beside a copy of ca.crt. Every argument is
// checked before anything is written.
func initSet(w io.Writer, dir string, own owner, validity time.Duration, args []string) error {
	if len(args) == 0 {
		return errors.New("init: name the certificates to make ([<subdir>/]<kind>[:<name>][@<host>,...])")
	}
	specs := make([]certSpec, 0, len(args))
	for _, a := range args {
		c, err := parseSpec(a)
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		specs = append(specs, c)
	}
	ca, created, err := pki.OpenCA(dir)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if created {
		fmt.Fprintf(w, "made a CA: %s\n", filepath.Join(dir, pki.CACert))
	} else {
		fmt.Fprintf(w, "kept the CA: %s\n", filepath.Join(dir, pki.CACert))
	}
	for _, c := range specs {
		if err := ensure(w, ca, dir, c, own, validity); err != nil {
			return fmt.Errorf("init: %s: %w", c.id, err)
		}
	}
	return nil
}

// ensure makes sure c's certificate and a copy of the CA's are in its directory.
func ensure(w io.Writer, ca *pki.CA, dir string, c certSpec, own owner, validity time.Duration) error {
	sub := filepath.Join(dir, c.sub)
	if c.sub != "" {
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return fmt.Errorf("certificates directory: %w", err)
		}
		if err := own.chown(sub); err != nil {
			return err
		}
		caCopy := filepath.Join(sub, pki.CACert)
		if old, err := os.ReadFile(caCopy); err != nil || !bytes.Equal(old, ca.PEM) {
			if err := pki.WriteFile(caCopy, ca.PEM, 0o644); err != nil {
				return err
			}
		}
		if err := own.chown(caCopy); err != nil {
			return err
		}
	}
	base := fileBase(c.id)
	if pki.Usable(ca, sub, base, c.id, validity/3) && sameHosts(filepath.Join(sub, base+".crt"), c.hosts) {
		certPath, keyPath := filepath.Join(sub, base+".crt"), filepath.Join(sub, base+".key")
		if err := own.chown(keyPath, certPath); err != nil {
			return err
		}
		fmt.Fprintf(w, "kept %s: %s, %s\n", c.id, certPath, keyPath)
		return nil
	}
	certPath, keyPath, err := issue(ca, sub, c.id, c.hosts, validity, own)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "issued %s: %s, %s", c.id, certPath, keyPath)
	if len(c.hosts) > 0 {
		fmt.Fprintf(w, " (serves as %s)", strings.Join(c.hosts, ", "))
	}
	fmt.Fprintln(w)
	return nil
}

// sameHosts reports whether the certificate at path is valid for exactly hosts.
func sameHosts(path string, hosts []string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	cert, err := pki.ParseCert(b)
	if err != nil {
		return false
	}
	var have, want []string
	have = append(have, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		have = append(have, ip.String())
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			want = append(want, ip.String())
		} else if h != "" {
			want = append(want, h)
		}
	}
	slices.Sort(have)
	slices.Sort(want)
	return slices.Equal(slices.Compact(have), slices.Compact(want))
}

// owner is who the issued files are given to; the zero owner leaves them to the runner.
type owner struct {
	set      bool
	uid, gid int
}

// parseOwner reads -owner: "" or "<uid>:<gid>".
func parseOwner(s string) (owner, error) {
	if s == "" {
		return owner{}, nil
	}
	u, g, ok := strings.Cut(s, ":")
	uid, uerr := strconv.Atoi(u)
	gid, gerr := strconv.Atoi(g)
	if !ok || uerr != nil || gerr != nil || uid < 0 || gid < 0 {
		return owner{}, fmt.Errorf("-owner %q: want <uid>:<gid>, numbers", s)
	}
	return owner{set: true, uid: uid, gid: gid}, nil
}

// chown gives paths to o.
func (o owner) chown(paths ...string) error {
	if !o.set {
		return nil
	}
	for _, p := range paths {
		if err := os.Chown(p, o.uid, o.gid); err != nil {
			return fmt.Errorf("-owner: %w", err)
		}
	}
	return nil
}
