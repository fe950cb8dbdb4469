package suite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/openhavip/havip/gateway"
	"github.com/openhavip/havip/gateway/openapi"
	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/suite"
)

// stack is a running suite reached over HTTP, with an API key for each of two accounts.
type stack struct {
	base       string // http://host:port, of the gateway the test uses
	local      string // the suite's gateway (calls in process)
	overGRPC   string // a gateway calling the suite over gRPC, as a standalone gatewayd does
	keyA, keyB string
	grpc       *grpc.ClientConn
	client     *http.Client
	ready      suite.Ready // the suite's addresses and certificates
}

// startStack runs a suite; with remote, the stack is reached through a gateway of its own
// that calls the services over gRPC (as a standalone gatewayd does) instead of the suite's
// in-process gateway.
func startStack(tb testing.TB, remote bool) *stack {
	tb.Helper()
	dir := tb.TempDir()
	s := &stack{keyA: apikey.New(), keyB: apikey.New(), client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, []byte(apikey.Line("acct-http-a", s.keyA)+apikey.Line("acct-http-b", s.keyB)), 0o600); err != nil {
		tb.Fatal(err)
	}
	r, conn, _ := run(tb, suite.Config{DataDir: dir, UnsafeNoFsync: true, KeysFile: keys}, io.Discard)
	s.local, s.grpc, s.ready = "http://"+r.HTTPAddr, conn, r
	{
		k, err := apikey.Load(keys)
		if err != nil {
			tb.Fatal(err)
		}
		gw, err := gateway.New(context.Background(), gateway.Config{IpamAddr: r.GRPCAddr, HaVipAddr: r.GRPCAddr, EipAddr: r.GRPCAddr, Keys: k, Log: etcdtest.Quiet,
			TLS: sourceAs(tb, r.CertsDir, identity.ID{Kind: identity.Gateway})})
		if err != nil {
			tb.Fatal(err)
		}
		srv := httptest.NewServer(gw.Handler())
		tb.Cleanup(func() {
			srv.Close()
			gw.Close()
		})
		s.overGRPC = srv.URL
	}
	s.base = s.local
	if remote {
		s.base = s.overGRPC
	}
	tb.Cleanup(s.client.CloseIdleConnections)
	return s
}

// reply is an HTTP answer with its JSON body decoded.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// str reads a string at a path of keys (and indexes) in the body.
func (r reply) str(path ...any) string {
	var v any = r.body
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return ""
			}
			v = l[k]
		}
	}
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(x)
	case bool:
		return fmt.Sprint(x)
	}
	return ""
}

// do sends a request with an optional key and extra headers; body is JSON-encoded unless it is
// a string (sent as is).
func (s *stack) do(tb testing.TB, key, method, path string, body any, headers ...string) reply {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// ok fails unless the reply is a 200.
func ok(tb testing.TB, r reply) reply {
	tb.Helper()
	if r.status != http.StatusOK {
		tb.Fatalf("status %d: %s", r.status, r.raw)
	}
	return r
}

// refused checks an error reply: status, reason, and the request ID in body and header.
func refused(tb testing.TB, what string, r reply, status int, reason string) {
	tb.Helper()
	if r.status != status || r.str("reason") != reason {
		tb.Errorf("%s: %d %s, want %d %s", what, r.status, r.raw, status, reason)
	}
	if id := r.header.Get("X-Request-Id"); id == "" || r.str("request_id") != id || r.str("message") == "" {
		tb.Errorf("%s: error body %s without the message or request ID %q", what, r.raw, id)
	}
}

// world is the console flow's resources of account A.
type world struct {
	vpc, subnet, ins1, ins2, havip, vip, eip, eipIP string
}

// console runs the console flow of the seeds over HTTP: VPC, subnet, two instances, HAVIP,
// switch range, EIP bound, describes; it stops before releasing.
func console(t *testing.T, s *stack) world {
	t.Helper()
	var w world
	w.vpc = ok(t, s.do(t, s.keyA, "POST", "/v1/vpcs", map[string]any{"vpc_name": "prod", "cidr_block": "10.0.0.0/16"})).str("vpc", "vpc_id")
	w.subnet = ok(t, s.do(t, s.keyA, "POST", "/v1/subnets", map[string]any{"vpc_id": w.vpc, "subnet_name": "web", "cidr_block": "10.0.1.0/24"})).str("subnet", "subnet_id")
	w.ins1 = ok(t, s.do(t, s.keyA, "POST", "/v1/instances", map[string]any{"instance_name": "web-1", "subnet_id": w.subnet, "host_id": "host-1"})).str("instance", "instance_id")
	w.ins2 = ok(t, s.do(t, s.keyA, "POST", "/v1/instances", map[string]any{"instance_name": "web-2", "subnet_id": w.subnet, "host_id": "host-2"})).str("instance", "instance_id")
	hv := ok(t, s.do(t, s.keyA, "POST", "/v1/havips", map[string]any{"vpc_id": w.vpc, "subnet_id": w.subnet, "havip_name": "web-vip"}))
	w.havip, w.vip = hv.str("havip", "havip_id"), hv.str("havip", "vip")
	if hv.str("havip", "state") != "UNBIND" || w.vip == "" {
		t.Fatalf("new HAVIP: %s", hv.raw)
	}
	ok(t, s.do(t, s.keyA, "POST", "/v1/havips/"+w.havip+":associateInstance", map[string]any{"havip_association_set": []map[string]string{
		{"instance_id": w.ins1, "instance_type": "CVM"}, {"instance_id": w.ins2, "instance_type": "CVM"}}}))
	if r := ok(t, s.do(t, s.keyA, "GET", "/v1/havips?filter.havip-name=web-vip&filter.vpc-id="+w.vpc, nil)); r.str("total_count") != "1" || r.str("havip_set", 0, "havip_id") != w.havip {
		t.Errorf("filtered list: %s", r.raw)
	}
	if r := ok(t, s.do(t, s.keyA, "PATCH", "/v1/havips/"+w.havip, map[string]any{"havip_name": "web-vip-2"})); r.str("havip", "havip_name") != "web-vip-2" {
		t.Errorf("rename: %s", r.raw)
	}
	if r := ok(t, s.do(t, s.keyA, "GET", "/v1/havips/"+w.havip+"/keepalived-config?interface=eth1", nil)); !strings.Contains(r.str("config_set", 0, "config"), w.vip) {
		t.Errorf("keepalived config: %s", r.raw)
	}
	eip := ok(t, s.do(t, s.keyA, "POST", "/v1/addresses", map[string]any{"address_name": "web-eip"}))
	w.eip, w.eipIP = eip.str("address_set", 0, "address_id"), eip.str("address_set", 0, "address_ip")
	if r := ok(t, s.do(t, s.keyA, "POST", "/v1/havips/"+w.havip+":associateAddressIp", map[string]any{"address_ip": w.eipIP})); r.str("havip", "address_ip") != w.eipIP {
		t.Errorf("bind: %s", r.raw)
	}
	if r := ok(t, s.do(t, s.keyA, "GET", "/v1/havips/"+w.havip, nil)); r.str("havip_set", 0, "address_ip") != w.eipIP || r.str("havip_set", 0, "havip_association_set", 1, "instance_id") != w.ins2 {
		t.Errorf("describe HAVIP: %s", r.raw)
	}
	if r := ok(t, s.do(t, s.keyA, "GET", "/v1/addresses/"+w.eip, nil)); r.str("address_set", 0, "address_status") != "BIND" || r.str("address_set", 0, "havip_id") != w.havip {
		t.Errorf("describe EIP: %s", r.raw)
	}
	return w
}

// TestConsoleFlowOverHTTP: the whole console flow, then the release in order (EIPs, HAVIP,
// CVMs, subnet), each step over REST; and each kind of service refusal with its HTTP status and reason.
func TestConsoleFlowOverHTTP(t *testing.T) {
	for _, remote := range []bool{false, true} {
		t.Run(map[bool]string{false: "in-process", true: "over-grpc"}[remote], func(t *testing.T) { consoleFlow(t, startStack(t, remote)) })
	}
}

func consoleFlow(t *testing.T, s *stack) {
	w := console(t, s)
	spare := ok(t, s.do(t, s.keyA, "POST", "/v1/addresses", map[string]any{}))
	spareID, spareIP := spare.str("address_set", 0, "address_id"), spare.str("address_set", 0, "address_ip")

	refusals := []struct {
		what         string
		method, path string
		body         any
		status       int
		reason       string
	}{
		{what: "a reserved VIP", method: "POST", path: "/v1/havips", body: map[string]any{"vpc_id": w.vpc, "subnet_id": w.subnet, "havip_name": "x", "vip": "10.0.1.1"}, status: 400, reason: "InvalidParameterValue.Reserved"},
		{what: "a VIP outside the subnet", method: "POST", path: "/v1/havips", body: map[string]any{"vpc_id": w.vpc, "subnet_id": w.subnet, "havip_name": "x", "vip": "10.0.2.9"}, status: 400, reason: "InvalidParameterValue.Range"},
		{what: "a VIP in use", method: "POST", path: "/v1/havips", body: map[string]any{"vpc_id": w.vpc, "subnet_id": w.subnet, "havip_name": "x", "vip": w.vip}, status: 409, reason: "InvalidParameterValue.Occupied"},
		{what: "delete a HAVIP with an EIP", method: "DELETE", path: "/v1/havips/" + w.havip, status: 400, reason: "UnsupportedOperation.BindEIP"},
		{what: "release a bound EIP", method: "DELETE", path: "/v1/addresses/" + w.eip, status: 400, reason: "UnsupportedOperation.AddressBound"},
		{what: "a second EIP on the HAVIP", method: "POST", path: "/v1/havips/" + w.havip + ":associateAddressIp", body: map[string]any{"address_ip": spareIP}, status: 400, reason: "UnsupportedOperation.HaVipBound"},
		{what: "an EIP of nobody", method: "POST", path: "/v1/havips/" + w.havip + ":associateAddressIp", body: map[string]any{"address_ip": "198.51.100.250"}, status: 404, reason: "ResourceNotFound"},
		{what: "an unknown filter", method: "GET", path: "/v1/havips?filter.colour=red", status: 400, reason: "InvalidParameter.FilterInvalidKey"},
		{what: "IDs and filters", method: "GET", path: "/v1/havips/" + w.havip + "?filter.vpc-id=" + w.vpc, status: 400, reason: "InvalidParameter.Coexist"},
		{what: "an unknown HAVIP", method: "GET", path: "/v1/havips/havip-00000000", status: 404, reason: "ResourceNotFound"},
		{what: "an ENI entry naming a CVM", method: "POST", path: "/v1/havips/" + w.havip + ":associateInstance", body: map[string]any{"havip_association_set": []map[string]string{{"instance_id": w.ins1, "instance_type": "ENI"}}}, status: 400, reason: "InvalidParameterValue.Malformed"},
		{what: "an unknown instance type", method: "POST", path: "/v1/havips/" + w.havip + ":associateInstance", body: map[string]any{"havip_association_set": []map[string]string{{"instance_id": w.ins1, "instance_type": "VM"}}}, status: 400, reason: "InvalidParameterValue.InstanceType"},
		{what: "a limit over 100", method: "GET", path: "/v1/havips?limit=101", status: 400, reason: "InvalidParameterValue.LimitExceeded"},
		{what: "a subnet overlapping another", method: "POST", path: "/v1/subnets", body: map[string]any{"vpc_id": w.vpc, "subnet_name": "x", "cidr_block": "10.0.1.128/25"}, status: 400, reason: "InvalidParameterValue.SubnetConflict"},
	}
	for _, tc := range refusals {
		refused(t, tc.what, s.do(t, s.keyA, tc.method, tc.path, tc.body), tc.status, tc.reason)
	}
	// A full subnet: 429 ResourceInsufficient.
	small := ok(t, s.do(t, s.keyA, "POST", "/v1/subnets", map[string]any{"vpc_id": w.vpc, "subnet_name": "tiny", "cidr_block": "10.0.9.0/29"})).str("subnet", "subnet_id")
	for i := 0; ; i++ {
		r := s.do(t, s.keyA, "POST", "/v1/havips", map[string]any{"vpc_id": w.vpc, "subnet_id": small, "havip_name": "fill"})
		if r.status == http.StatusOK && i < 8 {
			continue
		}
		refused(t, "a full subnet", r, 429, "ResourceInsufficient")
		break
	}

	// The release, in order.
	ok(t, s.do(t, s.keyA, "POST", "/v1/havips/"+w.havip+":disassociateAddressIp", map[string]any{}))
	ok(t, s.do(t, s.keyA, "POST", "/v1/addresses:release", map[string]any{"address_ids": []string{w.eip, spareID}}))
	ok(t, s.do(t, s.keyA, "POST", "/v1/havips/"+w.havip+":disassociateInstance", map[string]any{"havip_association_set": []map[string]string{
		{"instance_id": w.ins1, "instance_type": "CVM"}, {"instance_id": w.ins2, "instance_type": "CVM"}}}))
	ok(t, s.do(t, s.keyA, "DELETE", "/v1/havips/"+w.havip, nil))
	refused(t, "the deleted HAVIP", s.do(t, s.keyA, "GET", "/v1/havips/"+w.havip, nil), 404, "ResourceNotFound")
	if r := ok(t, s.do(t, s.keyA, "GET", "/v1/addresses", nil)); r.str("total_count") != "0" {
		t.Errorf("EIPs left: %s", r.raw)
	}
	// Then the CVMs (another account's key cannot), an ENI, and their subnet.
	refused(t, "a subnet with CVMs", s.do(t, s.keyA, "DELETE", "/v1/subnets/"+w.subnet, nil), 400, "ResourceInUse")
	refused(t, "another account's CVM", s.do(t, s.keyB, "DELETE", "/v1/instances/"+w.ins1, nil), 404, "ResourceNotFound")
	for _, ins := range []string{w.ins1, w.ins2} {
		ok(t, s.do(t, s.keyA, "DELETE", "/v1/instances/"+ins, nil))
		refused(t, "the deleted CVM", s.do(t, s.keyA, "GET", "/v1/instances/"+ins, nil), 404, "ResourceNotFound")
	}
	eni := ok(t, s.do(t, s.keyA, "POST", "/v1/network-interfaces", map[string]any{"subnet_id": w.subnet, "network_interface_name": "e"})).str("network_interface", "network_interface_id")
	ok(t, s.do(t, s.keyA, "DELETE", "/v1/network-interfaces/"+eni, nil))
	refused(t, "the deleted ENI", s.do(t, s.keyA, "GET", "/v1/network-interfaces/"+eni, nil), 404, "ResourceNotFound")
	ok(t, s.do(t, s.keyA, "DELETE", "/v1/subnets/"+w.subnet, nil))
}

// TestHTTPAuth: no key, a wrong key, another scheme, a forged account header and another
// account's key are all refused, change nothing and reveal nothing.
func TestHTTPAuth(t *testing.T) {
	for _, remote := range []bool{false, true} {
		t.Run(map[bool]string{false: "in-process", true: "over-grpc"}[remote], func(t *testing.T) { httpAuth(t, startStack(t, remote)) })
	}
}

func httpAuth(t *testing.T, s *stack) {
	w := console(t, s)
	snapshot := func() string {
		return ok(t, s.do(t, s.keyA, "GET", "/v1/havips", nil)).raw + ok(t, s.do(t, s.keyA, "GET", "/v1/addresses", nil)).raw + ok(t, s.do(t, s.keyA, "GET", "/v1/vpcs", nil)).raw
	}
	before := snapshot()
	create := map[string]any{"vpc_name": "intruder", "cidr_block": "10.1.0.0/16"}
	for _, tc := range []struct {
		what string
		auth string
	}{{"no key", ""}, {"a wrong key", "Bearer " + apikey.New()}, {"an empty bearer", "Bearer "}, {"basic auth", "Basic " + s.keyA}, {"the key alone", s.keyA}} {
		for _, req := range []struct{ method, path string }{{"POST", "/v1/vpcs"}, {"DELETE", "/v1/havips/" + w.havip}, {"GET", "/v1/havips/" + w.havip}} {
			r := s.do(t, "", req.method, req.path, create, "Authorization", tc.auth)
			refused(t, tc.what+" "+req.method, r, 401, "AuthFailure")
			if r.header.Get("WWW-Authenticate") == "" || strings.Contains(r.raw, w.havip) {
				t.Errorf("%s: %v %s", tc.what, r.header, r.raw)
			}
		}
	}
	// B's key, with every way of claiming to be A: A's resources do not exist for B.
	forged := [][]string{nil, {"X-Havip-Account", "acct-http-a"}, {"Grpc-Metadata-X-Havip-Account", "acct-http-a"}}
	for _, h := range forged {
		for _, req := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/v1/havips/" + w.havip, nil},
			{"DELETE", "/v1/havips/" + w.havip, nil},
			{"PATCH", "/v1/havips/" + w.havip, map[string]any{"havip_name": "stolen"}},
			{"POST", "/v1/havips/" + w.havip + ":disassociateAddressIp", map[string]any{}},
			{"DELETE", "/v1/addresses/" + w.eip, nil},
			{"GET", "/v1/addresses/" + w.eip, nil},
			{"DELETE", "/v1/subnets/" + w.subnet, nil},
		} {
			r := s.do(t, s.keyB, req.method, req.path, req.body, h...)
			refused(t, fmt.Sprintf("B %s %s with %v", req.method, req.path, h), r, 404, "ResourceNotFound")
			if strings.Contains(r.raw, w.vip) || strings.Contains(r.raw, w.eipIP) {
				t.Errorf("B's refusal reveals A's data: %s", r.raw)
			}
		}
		if r := ok(t, s.do(t, s.keyB, "GET", "/v1/havips", nil, h...)); r.str("total_count") != "0" {
			t.Errorf("B lists %s", r.raw)
		}
	}
	if after := snapshot(); after != before {
		t.Errorf("refused requests changed A's state:\nbefore %s\nafter  %s", before, after)
	}
	if r := ok(t, s.do(t, s.keyB, "GET", "/v1/vpcs", nil)); r.str("total_count") != "0" {
		t.Errorf("an unauthenticated create reached the services: %s", r.raw)
	}
}

// TestHTTPBadInput: malformed bodies, unknown fields, wrong types, oversized bodies, bad query
// parameters and IDs of the wrong shape get a 400 (413 for the size) with a clear message;
// unknown routes a 404; the request ID is the client's when well formed.
func TestHTTPBadInput(t *testing.T) {
	s := startStack(t, false)
	w := console(t, s)
	big := `{"vpc_name": "` + strings.Repeat("x", 2<<20) + `", "cidr_block": "10.2.0.0/16"}`
	for _, tc := range []struct {
		what, method, path string
		body               any
		status             int
		reason, message    string
	}{
		{"malformed JSON", "POST", "/v1/vpcs", `{"vpc_name": "a",`, 400, "InvalidParameter", "unexpected"},
		{"not an object", "POST", "/v1/vpcs", `[1, 2]`, 400, "InvalidParameter", ""},
		{"an unknown field", "POST", "/v1/vpcs", `{"vpc_name": "a", "cidr_block": "10.2.0.0/16", "colour": "red"}`, 400, "InvalidParameter", "colour"},
		{"a wrong type", "POST", "/v1/vpcs", `{"vpc_name": 5, "cidr_block": "10.2.0.0/16"}`, 400, "InvalidParameter", "vpcName"},
		{"a string for a number", "POST", "/v1/addresses", `{"address_count": "many"}`, 400, "InvalidParameter", "addressCount"},
		{"a negative count", "POST", "/v1/addresses", `{"address_count": -1}`, 400, "InvalidParameter", "addressCount"},
		{"an oversized body", "POST", "/v1/vpcs", big, 413, "InvalidParameterValue.TooLong", "limit"},
		{"a bad limit", "GET", "/v1/havips?limit=lots", "", 400, "InvalidParameter", "limit"},
		{"an unknown query parameter", "GET", "/v1/havips?colour=red", "", 400, "InvalidParameter", "colour"},
		{"filters where none are taken", "GET", "/v1/havips/" + w.havip + "/keepalived-config?filter.x=1", "", 400, "InvalidParameter", "filter"},
		{"a HAVIP ID of the wrong shape", "GET", "/v1/havips/not-an-id", nil, 400, "InvalidParameterValue.Malformed", "not-an-id"},
		{"a path ID of the wrong kind", "DELETE", "/v1/havips/" + w.vpc, nil, 400, "InvalidParameterValue.Malformed", w.vpc},
		{"an EIP ID of the wrong shape", "PATCH", "/v1/addresses/eip-TOOLONG123", map[string]any{"address_name": "x"}, 400, "InvalidParameterValue.Malformed", "eip-TOOLONG123"},
		{"an escaped slash in a path ID", "PATCH", "/v1/addresses/eip-%2F..", map[string]any{"address_name": "x"}, 404, "UnknownRoute", ""},
		{"an unknown route", "GET", "/v1/routers", nil, 404, "UnknownRoute", "/v1/routers"},
		{"a path outside the API", "GET", "/admin", nil, 404, "UnknownRoute", "/admin"},
		{"a method not served", "PUT", "/v1/havips/" + w.havip, map[string]any{}, 405, "UnsupportedOperation.MethodNotAllowed", "PUT"},
	} {
		r := s.do(t, s.keyA, tc.method, tc.path, tc.body)
		refused(t, tc.what, r, tc.status, tc.reason)
		if !strings.Contains(r.str("message"), tc.message) {
			t.Errorf("%s: message %q does not mention %q", tc.what, r.str("message"), tc.message)
		}
	}
	// The request ID: the client's when well formed, a new one otherwise.
	if r := s.do(t, s.keyA, "GET", "/v1/havips/bad", nil, "X-Request-Id", "trace-42.a"); r.header.Get("X-Request-Id") != "trace-42.a" || r.str("request_id") != "trace-42.a" {
		t.Errorf("client request ID: %v %s", r.header, r.raw)
	}
	if r := s.do(t, s.keyA, "GET", "/v1/havips", nil, "X-Request-Id", "bad id\u00e9"); r.header.Get("X-Request-Id") == "" || strings.Contains(r.header.Get("X-Request-Id"), "bad") {
		t.Errorf("malformed client request ID kept: %v", r.header)
	}
	if r := ok(t, s.do(t, s.keyA, "GET", "/v1/vpcs", nil)); r.str("total_count") != "1" {
		t.Errorf("bad input created something: %s", r.raw)
	}
}

// TestHTTPMethodOverrideIgnored: no header turns a POST into another method. A POST to a HAVIP's
// URL (JSON or an HTML form's body) carrying X-HTTP-Method-Override: DELETE, or the other
// override headers clients use, is refused as a POST (405) and the HAVIP stays as it was.
func TestHTTPMethodOverrideIgnored(t *testing.T) {
	s := startStack(t, false)
	w := console(t, s)
	const form = "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name                string
		contentType, header string // header: the override header sent with DELETE ("" for none)
		value               string
	}{
		{"X-HTTP-Method-Override on a form post", form, "X-HTTP-Method-Override", "DELETE"},
		{"X-HTTP-Method-Override in lower case", form, "X-HTTP-Method-Override", "delete"},
		{"X-HTTP-Method-Override on a JSON post", "application/json", "X-HTTP-Method-Override", "DELETE"},
		{"X-HTTP-Method on a form post", form, "X-HTTP-Method", "DELETE"},
		{"X-Method-Override on a form post", form, "X-Method-Override", "DELETE"},
		{"a form post taken for a GET", form, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hv := ok(t, s.do(t, s.keyA, "POST", "/v1/havips", map[string]any{"vpc_id": w.vpc, "subnet_id": w.subnet, "havip_name": "override"}))
			id := hv.str("havip", "havip_id")
			before := ok(t, s.do(t, s.keyA, "GET", "/v1/havips/"+id, nil)).raw
			headers := []string{"Content-Type", tc.contentType}
			if tc.header != "" {
				headers = append(headers, tc.header, tc.value)
			}
			body := "havip_id=" + id
			if tc.contentType != form {
				body = "{}"
			}
			refused(t, "POST with "+tc.name, s.do(t, s.keyA, "POST", "/v1/havips/"+id, body, headers...), http.StatusMethodNotAllowed, "UnsupportedOperation.MethodNotAllowed")
			after := s.do(t, s.keyA, "GET", "/v1/havips/"+id, nil)
			if after.status != http.StatusOK {
				t.Fatalf("the HAVIP is gone after a POST with %s: %d %s", tc.name, after.status, after.raw)
			}
			if after.raw != before {
				t.Errorf("a POST with %s changed the HAVIP:\nbefore %s\nafter  %s", tc.name, before, after.raw)
			}
			ok(t, s.do(t, s.keyA, "DELETE", "/v1/havips/"+id, nil))
		})
	}
}

// TestHealthAndOpenAPI: /healthz reports each service; /openapi.json is the generated
// description, and every operation in it is routed by the gateway (none answers "no route").
func TestHealthAndOpenAPI(t *testing.T) {
	s := startStack(t, false)
	h := ok(t, s.do(t, "", "GET", "/healthz", nil))
	for _, svc := range []string{"ipam.v1.IpamService", "havip.v1.HaVipService", "eip.v1.EipService"} {
		if h.str("services", svc) != "SERVING" {
			t.Errorf("healthz: %s", h.raw)
		}
	}
	if h.str("status") != "SERVING" {
		t.Errorf("healthz: %s", h.raw)
	}
	doc := ok(t, s.do(t, "", "GET", "/openapi.json", nil))
	if doc.raw != string(openapi.JSON) {
		t.Fatal("/openapi.json is not the generated description")
	}
	paths, _ := doc.body["paths"].(map[string]any)
	if len(paths) < 25 {
		t.Fatalf("the description has %d paths", len(paths))
	}
	ops := 0
	for p, m := range paths {
		for method := range m.(map[string]any) {
			ops++
			path := p
			for strings.Contains(path, "{") {
				i, j := strings.Index(path, "{"), strings.Index(path, "}")
				path = path[:i] + "x" + path[j+1:]
			}
			r := s.do(t, s.keyA, strings.ToUpper(method), path, map[string]any{})
			if r.str("reason") == "UnknownRoute" || r.status == http.StatusMethodNotAllowed {
				t.Errorf("%s %s is described but not routed: %s", method, p, r.raw)
			}
		}
	}
	if ops < 32 {
		t.Errorf("the description has %d operations, want every public RPC (32)", ops)
	}
	for _, internal := range []string{"arpbroker", "NatRule", "WatchNatRules"} {
		if strings.Contains(doc.raw, internal) {
			t.Errorf("the description exposes %s", internal)
		}
	}
}

// TestGatewayConcurrentCreates: 40 concurrent creates over HTTP with one client token make
// one HAVIP, and every answer names it.
func TestGatewayConcurrentCreates(t *testing.T) {
	s := startStack(t, true)
	w := console(t, s)
	var wg sync.WaitGroup
	ids := make([]string, 40)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.do(t, s.keyA, "POST", "/v1/havips", map[string]any{"vpc_id": w.vpc, "subnet_id": w.subnet, "havip_name": "tok", "client_token": "tok-1"})
			ids[i] = r.str("havip", "havip_id")
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("one token, several answers: %v", ids)
		}
	}
	if r := ok(t, s.do(t, s.keyA, "GET", "/v1/havips?filter.havip-name=tok", nil)); r.str("total_count") != "1" {
		t.Errorf("one token made %s HAVIPs", r.str("total_count"))
	}
}
