package suite_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestKeepalivedConfigText: GET /v1/havips/{id}/keepalived-config answers the configurations as
// text ready to paste when asked (?format=text, or Accept: text/plain alone), one server's with
// ?instance_id=, and JSON otherwise; bad requests and the services' refusals are JSON errors.
func TestKeepalivedConfigText(t *testing.T) {
	for _, remote := range []bool{false, true} {
		t.Run(map[bool]string{false: "in-process", true: "over-grpc"}[remote], func(t *testing.T) { keepalivedConfigText(t, startStack(t, remote)) })
	}
}

func keepalivedConfigText(t *testing.T, s *stack) {
	w := console(t, s)
	path := "/v1/havips/" + w.havip + "/keepalived-config"
	js := ok(t, s.do(t, s.keyA, "GET", path+"?interface=eth1", nil))
	cfg1, cfg2 := js.str("config_set", 0, "config"), js.str("config_set", 1, "config")
	if js.str("config_set", 0, "instance_id") != w.ins1 || js.str("config_set", 1, "instance_id") != w.ins2 || cfg1 == "" || cfg2 == "" {
		t.Fatalf("JSON configs: %s", js.raw)
	}
	all := "# ---- keepalived.conf of " + w.ins1 + " (" + js.str("config_set", 0, "network_interface_id") + ", " + js.str("config_set", 0, "unicast_src_ip") + ") ----\n" + cfg1 +
		"\n# ---- keepalived.conf of " + w.ins2 + " (" + js.str("config_set", 1, "network_interface_id") + ", " + js.str("config_set", 1, "unicast_src_ip") + ") ----\n" + cfg2

	for _, tc := range []struct {
		name, query string
		headers     []string
		want        string // the text; "" for the JSON answer
	}{
		{name: "format=text", query: "?format=text&interface=eth1", want: all},
		{name: "Accept: text/plain", query: "?interface=eth1", headers: []string{"Accept", "text/plain"}, want: all},
		{name: "one instance", query: "?format=text&interface=eth1&instance_id=" + w.ins2, want: cfg2},
		{name: "format=text over an Accept naming JSON", query: "?format=text&interface=eth1", headers: []string{"Accept", "application/json"}, want: all},
		{name: "format=json", query: "?format=json&interface=eth1", headers: []string{"Accept", "text/plain"}},
		{name: "Accept naming JSON and text", query: "?interface=eth1", headers: []string{"Accept", "text/plain, application/json"}},
		{name: "Accept refusing text", query: "?interface=eth1", headers: []string{"Accept", "text/plain;q=0"}},
		{name: "no Accept", query: "?interface=eth1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok(t, s.do(t, s.keyA, "GET", path+tc.query, nil, tc.headers...))
			if tc.want == "" {
				if diff := cmp.Diff(js.body, r.body); diff != "" || r.header.Get("Content-Type") != "application/json" {
					t.Errorf("want the JSON answer, got %s %s (-want +got):\n%s", r.header.Get("Content-Type"), r.raw, diff)
				}
				return
			}
			if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if diff := cmp.Diff(tc.want, r.raw); diff != "" {
				t.Errorf("text (-want +got):\n%s", diff)
			}
		})
	}

	refusals := []struct {
		name, key, path string
		status          int
		reason          string
	}{
		{"an unknown format", s.keyA, path + "?format=yaml", 400, "InvalidParameter"},
		{"instance_id without format=text", s.keyA, path + "?instance_id=" + w.ins1, 400, "InvalidParameter"},
		{"an unknown parameter", s.keyA, path + "?format=text&colour=red", 400, "InvalidParameter"},
		{"a filter", s.keyA, path + "?format=text&filter.vpc-id=" + w.vpc, 400, "InvalidParameter"},
		{"an instance outside the switch range", s.keyA, path + "?format=text&instance_id=ins-00000000", 404, "ResourceNotFound"},
		{"a bad interface name", s.keyA, path + "?format=text&interface=%01", 400, "InvalidParameterValue.Malformed"},
		{"an unknown HAVIP", s.keyA, "/v1/havips/havip-00000000/keepalived-config?format=text", 404, "ResourceNotFound"},
		{"a malformed HAVIP ID", s.keyA, "/v1/havips/" + w.vpc + "/keepalived-config?format=text", 400, "InvalidParameterValue.Malformed"},
		{"another account's HAVIP", s.keyB, path + "?format=text", 404, "ResourceNotFound"},
		{"no key", "", path + "?format=text", 401, "AuthFailure"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.key, "GET", tc.path, nil)
			refused(t, tc.name, r, tc.status, tc.reason)
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("error Content-Type %q", ct)
			}
		})
	}

	// A HAVIP with fewer than two servers has no configuration: the service's refusal.
	ok(t, s.do(t, s.keyA, "POST", "/v1/havips/"+w.havip+":disassociateInstance", map[string]any{"havip_association_set": []map[string]string{{"instance_id": w.ins2, "instance_type": "CVM"}}}))
	refused(t, "a single server", s.do(t, s.keyA, "GET", path+"?format=text", nil), http.StatusBadRequest, "UnsupportedOperation.NotAssociated")
}
