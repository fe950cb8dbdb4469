package identity_test

import (
	"crypto/x509"
	"net/url"
	"strings"
	"testing"

	"github.com/openhavip/havip/platform/identity"
)

// TestParse: the SPIFFE IDs of the trust domain read back as the identity that wrote them;
// anything else is refused.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want identity.ID
		bad  bool
	}{
		{in: "spiffe://havip.local/service/havipd", want: identity.ID{Kind: identity.Service, Name: "havipd"}},
		{in: "spiffe://havip.local/agent/host-a.rack_1", want: identity.ID{Kind: identity.Agent, Name: "host-a.rack_1"}},
		{in: "spiffe://havip.local/operator", want: identity.ID{Kind: identity.Operator}},
		{in: "spiffe://havip.local/operator/alice", want: identity.ID{Kind: identity.Operator, Name: "alice"}},
		{in: "spiffe://havip.local/gateway", want: identity.ID{Kind: identity.Gateway}},
		{in: "spiffe://havip.local/dataplane/natd-1", want: identity.ID{Kind: identity.DataPlane, Name: "natd-1"}},
		{in: "spiffe://havip.local/client/ghz", want: identity.ID{Kind: identity.Client, Name: "ghz"}},
		{in: "spiffe://havip.local/service", bad: true},                          // a service needs a name
		{in: "spiffe://havip.local/agent/", bad: true},                           // so does an agent
		{in: "spiffe://havip.local/agent/a/b", bad: true},                        // one segment
		{in: "spiffe://havip.local/agent/..", bad: true},                         // not a path trick
		{in: "spiffe://havip.local/agent/-a", bad: true},                         // not starting with '-'
		{in: "spiffe://havip.local/tenant/acct-1", bad: true},                    // no such kind
		{in: "spiffe://havip.local/dev", bad: true},                              // never from a certificate
		{in: "spiffe://example.org/operator", bad: true},                         // another trust domain
		{in: "spiffe://HAVIP.LOCAL/operator", bad: true},                         // exactly the trust domain
		{in: "https://havip.local/operator", bad: true},                          // not SPIFFE
		{in: "spiffe://havip.local/operator?x=1", bad: true},                     // no query
		{in: "spiffe://u@havip.local/operator", bad: true},                       // no user
		{in: "spiffe://havip.local/service/a%2Fb", bad: true},                    // no escaped slash
		{in: "spiffe://havip.local/agent/" + strings.Repeat("a", 65), bad: true}, // at most 64
	} {
		got, err := identity.Parse(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("Parse(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		if s := got.String(); s != tc.in {
			t.Errorf("%v prints as %q, want %q", got, s, tc.in)
		}
	}
}

// TestFromCert: a certificate carries exactly one SPIFFE ID; other URIs do not count.
func TestFromCert(t *testing.T) {
	u := func(s string) *url.URL { p, _ := url.Parse(s); return p }
	for _, tc := range []struct {
		name string
		uris []*url.URL
		ok   bool
	}{
		{"one", []*url.URL{u("spiffe://havip.local/agent/h1")}, true},
		{"one and a web URI", []*url.URL{u("https://example.org/"), u("spiffe://havip.local/agent/h1")}, true},
		{"none", nil, false},
		{"two", []*url.URL{u("spiffe://havip.local/agent/h1"), u("spiffe://havip.local/operator")}, false},
	} {
		_, err := identity.FromCert(&x509.Certificate{URIs: tc.uris})
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
