// Command havip-cert makes the platform's local CA and issues its certificates, one SPIFFE identity each.
//
//	havip-cert [-dir certs] create-ca
//	havip-cert [-dir certs] [-host h,...] create-service <name>
//	havip-cert [-dir certs] [-host h,...] create-gateway [name]
//	havip-cert [-dir certs] create-agent <host-id>
//	havip-cert [-dir certs] create-operator [name]
//	havip-cert [-dir certs] create-dataplane <name>
//	havip-cert [-dir certs] create-client [name]
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
  havip-cert show <file.crt>                    the identity, names and validity of a certificate

Issuing again replaces the files atomically: running daemons pick the new ones up within a
second, without a restart (rotation).

Flags:`

// kinds maps each create- command to its identity kind and file prefix.
var kinds = map[string]struct {
	kind     identity.Kind
	prefix   string // file name prefix; the name follows it
	required bool   // the name argument is required
}{
	"create-service":   {identity.Service, "", true},
	"create-gateway":   {identity.Gateway, "gateway", false},
	"create-agent":     {identity.Agent, "agent", true},
	"create-operator":  {identity.Operator, "operator", false},
	"create-dataplane": {identity.DataPlane, "dataplane", true},
	"create-client":    {identity.Client, "client", false},
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
	config.String(fs, &dir, config.Setting{Flag: "dir", Env: "HAVIP_CERTS_DIR"}, "directory of the CA and the certificates")
	config.Var(fs, hostList{&hosts}, config.Setting{Flag: "host", Env: "HAVIP_CERT_HOSTS"}, "DNS names and IP addresses a service's or gateway's certificate is valid for (repeat or comma-separate; default 127.0.0.1,localhost)")
	config.Duration(fs, &validity, config.Setting{Flag: "valid-for", Env: "HAVIP_CERT_VALIDITY"}, "how long an issued certificate is valid")
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
	case "show":
		if len(rest) != 1 {
			return errors.New("show takes one certificate file")
		}
		return show(stdout, rest[0])
	}
	k, ok := kinds[cmd]
	if !ok {
		return fmt.Errorf("unknown command %q (havip-cert -h lists them)", cmd)
	}
	if len(rest) > 1 || (k.required && len(rest) == 0) {
		return fmt.Errorf("%s: want one name argument", cmd)
	}
	name := ""
	if len(rest) == 1 {
		name = rest[0]
	}
	id, err := identity.New(k.kind, name)
	if err != nil {
		return err
	}
	if validity <= 0 {
		return errors.New("-valid-for must be positive")
	}
	if len(hosts) == 0 && (k.kind == identity.Service || k.kind == identity.Gateway) {
		hosts = []string{"127.0.0.1", "localhost"}
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		return fmt.Errorf("%w (make one with havip-cert -dir %s create-ca)", err, dir)
	}
	leaf, err := ca.Issue(id, hosts, validity)
	if err != nil {
		return err
	}
	base := name
	if k.prefix != "" {
		base = k.prefix
		if name != "" {
			base += "-" + name
		}
	}
	certPath, keyPath, err := leaf.Write(dir, base)
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
