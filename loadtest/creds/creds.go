// Package creds finds or issues the certificates a load run calls with: a tenant's and a host agent's.
package creds

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/pki"
)

// Validity is how long the certificates Resolve issues are valid.
const Validity = 24 * time.Hour

// ClientName is the name of the client identity Resolve issues: spiffe://havip.local/client/havip-load.
const ClientName = "havip-load"

// Resolve returns the tenant's and the agent's files from the certificates directory dir.
//
// When dir holds the CA's key (make run's <data dir>/certs), it issues into out a client
// certificate (the identity for tools calling with an API key) and an agent certificate for
// host, a host of the run's own. Otherwise (make compose-up's build/certs) it takes the
// operator's certificate for the tenant calls and the first agent-<host>.crt of dir for the
// reports.
func Resolve(dir, out, host string) (tenant, agent mtls.Files, err error) {
	if _, err := os.Stat(filepath.Join(dir, pki.CAKey)); err == nil {
		return issue(dir, out, host)
	}
	tenant = mtls.InDir(dir, "operator")
	agents, err := filepath.Glob(filepath.Join(dir, "agent-*.crt"))
	if err != nil {
		return tenant, agent, err
	}
	slices.Sort(agents)
	if len(agents) == 0 {
		return tenant, agent, fmt.Errorf("%s has neither the CA's key (to issue certificates) nor an agent-<host>.crt", dir)
	}
	agent = mtls.InDir(dir, strings.TrimSuffix(filepath.Base(agents[0]), ".crt"))
	for _, f := range []string{tenant.CA, tenant.Cert, tenant.Key, agent.Key} {
		if _, err := os.Stat(f); err != nil {
			return tenant, agent, err
		}
	}
	return tenant, agent, nil
}

// issue makes a client and an agent certificate from the CA of dir into out.
func issue(dir, out, host string) (tenant, agent mtls.Files, err error) {
	ca, err := pki.LoadCA(dir)
	if err != nil {
		return tenant, agent, err
	}
	for _, c := range []struct {
		kind  identity.Kind
		name  string
		files *mtls.Files
	}{{identity.Client, ClientName, &tenant}, {identity.Agent, host, &agent}} {
		id, err := identity.New(c.kind, c.name)
		if err != nil {
			return tenant, agent, err
		}
		leaf, err := ca.Issue(id, nil, Validity)
		if err != nil {
			return tenant, agent, err
		}
		file := string(c.kind) + "-" + c.name
		if _, _, err := leaf.Write(out, file); err != nil {
			return tenant, agent, err
		}
		*c.files = mtls.InDir(out, file)
		c.files.CA = filepath.Join(dir, pki.CACert)
	}
	return tenant, agent, nil
}
