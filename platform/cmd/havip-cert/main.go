// Command havip-cert makes the platform's local CA and issues its certificates, one SPIFFE identity each.
//
//	havip-cert [-dir certs] create-ca
//	havip-cert [-dir certs] [-host h,...] create-service <name>
//	havip-cert [-dir certs] [-host h,...] create-gateway [name]
//	havip-cert [-dir certs] create-agent <host-id>
//	havip-cert [-dir certs] create-operator [name]
//	havip-cert [-dir certs] create-dataplane <name>
//	havip-cert [-dir certs] create-client [name]
//	havip-cert [-dir certs] [-owner uid:gid] init [<subdir>/]<kind>[:<name>][@<host>,...]...
//	havip-cert show <file.crt>
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/pki"
)

const usage = `havip-cert makes the platform's local CA and issues certificates, each carrying one identity
(a SPIFFE ID, spiffe://havip.local/<kind>[/<name>]) that the services authorize by.

  havip-cert [flags] create-ca                  the CA: ca.crt, ca.key (refuses to replace one)
  havip-cert [flags] create-service <name>      a daemon (ipamd, havipd, arpbrokerd, eipd, etcd…): <name>.crt/.key
  havip-cert [flags] create-gateway [name]      the REST gateway: gateway[-name].crt/.key
  havip-cert [flags] create-agent <host-id>     the agent of a host: agent-<host-id>.crt/.key
  havip-cert [flags] create-operator [name]     a person or tool (grpcurl, ghz): operator[-name].crt/.key
  havip-cert [flags] create-dataplane <name>    a data-plane component (natd): dataplane-<name>.crt/.key
  havip-cert [flags] create-client [name]       a tool calling tenant methods with an API key only (ghz): client[-name].crt/.key
  havip-cert [flags] init <cert>...             the CA if there is none, then each <cert> (below)
  havip-cert show <file.crt>                    the identity, names and validity of a certificate

Issuing again replaces the files atomically: running daemons pick the new ones up within a
second, without a restart (rotation).

init makes a whole set at once and may run again and again (a container's entrypoint, say): it
keeps the CA it finds (or makes one), and each <cert>, [<subdir>/]<kind>[:<name>][@<host>,...]
with <kind> service, gateway, agent, operator or dataplane, lands in <dir>/<subdir> beside a
copy of ca.crt. A certificate already there is kept while it is this CA's, for that identity
and those hosts, with more than a third of -valid-for left; otherwise it is issued again.
  havip-cert -dir certs init etcd/service:etcd@etcd,localhost ops/operator agents/agent:host-a

Flags:`

// prefixes are the file name prefixes of each identity kind (the name follows, after a dash);
// a service's files are named after it alone. create-<kind> issues one of kind.
var prefixes = map[identity.Kind]string{
	identity.Service:   "",
	identity.Gateway:   "gateway",
	identity.Agent:     "agent",
	identity.Operator:  "operator",
	identity.DataPlane: "dataplane",
	identity.Client:    "client",
}

// fileBase is the base name of id's files: <name>.crt for a service, <prefix>[-<name>].crt
// for the others.
func fileBase(id identity.ID) string {
	p := prefixes[id.Kind]
	switch {
	case p == "":
		return id.Name
	case id.Name == "":
		return p
	}
	return p + "-" + id.Name
}

// defaultHosts are the hosts of a service's or gateway's certificate when none is given.
func defaultHosts(k identity.Kind, hosts []string) []string {
	if len(hosts) == 0 && (k == identity.Service || k == identity.Gateway) {
		return []string{"127.0.0.1", "localhost"}
	}
	return hosts
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "havip-cert:", err)
		os.Exit(2)
	}
}

// hostList collects -host values.
type hostList struct{ p *[]string }

func (h hostList) String() string {
	if h.p == nil {
		return ""
	}
	return strings.Join(*h.p, ",")
}

func (h hostList) Set(v string) error {
	*h.p = append(*h.p, config.Split(v)...)
	return nil
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("havip-cert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := "certs"
	hosts := []string{}
	validity := pki.LeafValidity
	ownerFlag := ""
	config.String(fs, &dir, config.Setting{Flag: "dir", Env: "HAVIP_CERTS_DIR"}, "directory of the CA and the certificates")
	config.Var(fs, hostList{&hosts}, config.Setting{Flag: "host", Env: "HAVIP_CERT_HOSTS"}, "DNS names and IP addresses a service's or gateway's certificate is valid for (repeat or comma-separate; default 127.0.0.1,localhost)")
	config.Duration(fs, &validity, config.Setting{Flag: "valid-for", Env: "HAVIP_CERT_VALIDITY"}, "how long an issued certificate is valid")
	config.String(fs, &ownerFlag, config.Setting{Flag: "owner", Env: "HAVIP_CERT_OWNER"}, "uid:gid to give the issued certificates and keys (and init's directories), so that a daemon running as that user reads its key when havip-cert runs as root; empty: the runner's")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usage)
		config.PrintDefaults(fs.Output(), fs, os.LookupEnv)
	}
	if err := config.ParseCommand(fs, args, os.LookupEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	own, err := parseOwner(ownerFlag)
	if err != nil {
		return err
	}
	if validity <= 0 {
		return errors.New("-valid-for must be positive")
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errors.New("no command")
	}
	cmd, rest := rest[0], rest[1:]
	switch cmd {
	case "create-ca":
		if len(rest) != 0 {
			return errors.New("create-ca takes no argument")
		}
		if _, err := pki.CreateCA(dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "made a CA: %s, %s\n", filepath.Join(dir, pki.CACert), filepath.Join(dir, pki.CAKey))
		return nil
	case "init":
		if len(hosts) > 0 {
			return errors.New("init takes each certificate's hosts after its @, not from -host")
		}
		return initSet(stdout, dir, own, validity, rest)
	case "show":
		if len(rest) != 1 {
			return errors.New("show takes one certificate file")
		}
		return show(stdout, rest[0])
	}
	kind, ok := strings.CutPrefix(cmd, "create-")
	if _, known := prefixes[identity.Kind(kind)]; !ok || !known {
		return fmt.Errorf("unknown command %q (havip-cert -h lists them)", cmd)
	}
	if len(rest) > 1 {
		return fmt.Errorf("%s: want one name argument", cmd)
	}
	name := ""
	if len(rest) == 1 {
		name = rest[0]
	}
	id, err := identity.New(identity.Kind(kind), name)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		return fmt.Errorf("%w (make one with havip-cert -dir %s create-ca)", err, dir)
	}
	hosts = defaultHosts(id.Kind, hosts)
	certPath, keyPath, err := issue(ca, dir, id, hosts, validity, own)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "issued %s: %s, %s (valid for %s", id, certPath, keyPath, validity)
	if len(hosts) > 0 {
		fmt.Fprintf(stdout, "; serves as %s", strings.Join(hosts, ", "))
	}
	fmt.Fprintln(stdout, ")")
	return nil
}

// issue writes a certificate of ca for id, valid for hosts, into dir, given to own.
func issue(ca *pki.CA, dir string, id identity.ID, hosts []string, validity time.Duration, own owner) (certPath, keyPath string, err error) {
	if err := mayWrite(dir, fileBase(id), id); err != nil {
		return "", "", err
	}
	leaf, err := ca.Issue(id, hosts, validity)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath, err = leaf.Write(dir, fileBase(id))
	if err != nil {
		return "", "", err
	}
	if err := own.chown(keyPath, certPath); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// mayWrite refuses to write id's files over the CA's, or over the files of another identity
// (a service named "agent-host-a" would otherwise replace that agent's files with a service's
// certificate, and one named "ca" the CA itself).
func mayWrite(dir, base string, id identity.ID) error {
	if base == "ca" || base == ".tmp" {
		return fmt.Errorf("%s: its files would be the CA's; choose another name", id)
	}
	b, err := os.ReadFile(filepath.Join(dir, base+".crt"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	c, err := pki.ParseCert(b)
	if err != nil {
		return fmt.Errorf("%s holds no certificate (remove it first): %w", filepath.Join(dir, base+".crt"), err)
	}
	if other, err := identity.FromCert(c); err != nil || other != id {
		return fmt.Errorf("%s holds another identity's certificate (%v); remove it first, or choose another name", filepath.Join(dir, base+".crt"), c.URIs)
	}
	return nil
}

// show prints a certificate's identity, names and validity.
func show(w io.Writer, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	c, err := pki.ParseCert(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	id, idErr := identity.FromCert(c)
	if idErr != nil {
		fmt.Fprintf(w, "identity: none (%v)\n", idErr)
	} else {
		fmt.Fprintf(w, "identity: %s\n", id)
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	fmt.Fprintf(w, "serves as: %s\nissuer: %s\nvalid: %s to %s", strings.Join(names, ", "), c.Issuer.CommonName, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	if time.Now().After(c.NotAfter) {
		fmt.Fprint(w, " (EXPIRED)")
	}
	fmt.Fprintln(w)
	return nil
}
