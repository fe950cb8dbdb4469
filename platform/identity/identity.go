// Package identity names the platform's callers as SPIFFE IDs, spiffe://havip.local/<kind>[/<name>], read from their certificates.
package identity

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
)

// TrustDomain is the SPIFFE trust domain of every identity the platform issues and accepts.
const TrustDomain = "havip.local"

// Kind is what a caller is.
type Kind string

// The kinds of identity.
const (
	// Service is a control-plane daemon (ipamd, havipd, arpbrokerd, eipd, the suite); its name is
	// the daemon's.
	Service Kind = "service"
	// Gateway is the REST gateway; it asserts the account of the API key it checked.
	Gateway Kind = "gateway"
	// Agent is a host agent; its name is the host_id of the host it runs on.
	Agent Kind = "agent"
	// Operator is a person or tool running the platform.
	Operator Kind = "operator"
	// DataPlane is a data-plane component (a NAT daemon) that follows owners and NAT rules.
	DataPlane Kind = "dataplane"
	// Client is a tool that calls tenant methods with an API key only (a load generator, a
	// script): it may assert no account and sees no other tenant's state.
	Client Kind = "client"
	// Dev is a caller on a plaintext connection, which a server accepts only when started with its
	// development flag: it is trusted as every kind. No certificate carries it.
	Dev Kind = "dev"
)

// named reports whether identities of k carry a name (required) or may carry one (optional).
var named = map[Kind]struct{ required bool }{
	Service:   {required: true},
	Agent:     {required: true},
	DataPlane: {required: true},
	Gateway:   {},
	Operator:  {},
	Client:    {},
}

// ID is one identity.
type ID struct {
	Kind Kind
	// Name is the service's name, the agent's host_id or the data-plane component's name; it
	// is optional for gateways and operators.
	Name string
}

// New returns the identity of kind k and name, or an error if it is not a valid one.
func New(k Kind, name string) (ID, error) {
	id := ID{Kind: k, Name: name}
	rule, ok := named[k]
	switch {
	case !ok:
		return ID{}, fmt.Errorf("unknown identity kind %q", k)
	case name == "" && rule.required:
		return ID{}, fmt.Errorf("a %s identity needs a name", k)
	case name != "" && !validName(name):
		return ID{}, fmt.Errorf("name %q: want 1 to 64 of A-Z a-z 0-9 . _ -, not starting with . or -", name)
	}
	return id, nil
}

// validName reports whether n is a usable path segment: 1 to 64 of [A-Za-z0-9._-], not "." or
// "..", not starting with '.' or '-'.
func validName(n string) bool {
	if n == "" || len(n) > 64 || n[0] == '.' || n[0] == '-' {
		return false
	}
	for i := 0; i < len(n); i++ {
		switch c := n[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// URI is the identity as a SPIFFE ID, as certificates carry it.
func (id ID) URI() *url.URL {
	path := "/" + string(id.Kind)
	if id.Name != "" {
		path += "/" + id.Name
	}
	return &url.URL{Scheme: "spiffe", Host: TrustDomain, Path: path}
}

// String is the SPIFFE ID.
func (id ID) String() string {
	if id.Kind == Dev {
		return "dev (plaintext)"
	}
	return id.URI().String()
}

// Parse reads a SPIFFE ID of the trust domain.
func Parse(s string) (ID, error) {
	u, err := url.Parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("identity %q: %w", s, err)
	}
	return fromURI(u)
}

func fromURI(u *url.URL) (ID, error) {
	if u.Scheme != "spiffe" || u.Host != TrustDomain || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return ID{}, fmt.Errorf("identity %q: want spiffe://%s/<kind>[/<name>]", u.String(), TrustDomain)
	}
	kind, name, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	id, err := New(Kind(kind), name)
	if err != nil {
		return ID{}, fmt.Errorf("identity %q: %w", u.String(), err)
	}
	if u.RawPath != "" || u.String() != id.URI().String() { // no escapes, one spelling only
		return ID{}, fmt.Errorf("identity %q: not in its canonical form %q", u.String(), id.URI().String())
	}
	return id, nil
}

// FromCert returns the identity a certificate carries: its one SPIFFE URI SAN.
func FromCert(c *x509.Certificate) (ID, error) {
	var spiffe []*url.URL
	for _, u := range c.URIs {
		if u.Scheme == "spiffe" {
			spiffe = append(spiffe, u)
		}
	}
	if len(spiffe) != 1 {
		return ID{}, fmt.Errorf("certificate %q carries %d SPIFFE IDs, want 1", c.Subject.CommonName, len(spiffe))
	}
	return fromURI(spiffe[0])
}

type ctxKey struct{}

// NewContext returns ctx carrying the identity of the caller a request comes from.
func NewContext(ctx context.Context, id ID) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity of the caller of the request ctx belongs to.
func FromContext(ctx context.Context) (ID, bool) {
	id, ok := ctx.Value(ctxKey{}).(ID)
	return id, ok
}
