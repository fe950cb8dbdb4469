package telemetry_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// span is one received span, with the service that sent it.
type span struct {
	service           string
	name              string
	kind              tracepb.Span_SpanKind
	trace, id, parent string // hex; parent "" for a root
	attrs             map[string]string
	status            tracepb.Status_StatusCode
}

func (s span) String() string {
	return fmt.Sprintf("%s %q %s id=%s parent=%s %v", s.service, s.name, s.kind, s.id, s.parent, s.attrs)
}

// receiver is an OTLP/gRPC trace receiver: the collector's TraceService, keeping every span.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []span
}

// startReceiver serves a receiver on a free loopback port until the test ends.
func startReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return r, lis.Addr().String()
}

// Export keeps the spans of a request.
func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, span{
					service: service, name: s.GetName(), kind: s.GetKind(),
					trace: hex.EncodeToString(s.GetTraceId()), id: hex.EncodeToString(s.GetSpanId()), parent: hex.EncodeToString(s.GetParentSpanId()),
					attrs: attrs(s.GetAttributes()), status: s.GetStatus().GetCode(),
				})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// attrs flattens attributes to strings (a list as its values joined by commas).
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch {
		case v.GetArrayValue() != nil:
			var parts []string
			for _, e := range v.GetArrayValue().GetValues() {
				parts = append(parts, e.GetStringValue())
			}
			out[kv.GetKey()] = strings.Join(parts, ",")
		case v.GetIntValue() != 0:
			out[kv.GetKey()] = fmt.Sprint(v.GetIntValue())
		default:
			out[kv.GetKey()] = v.GetStringValue()
		}
	}
	return out
}

// traceOf waits until the trace of the gateway request with requestID holds spans that pass
// complete, and returns them.
func (r *receiver) traceOf(t *testing.T, requestID string, complete func([]span) bool) []span {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		var trace string
		for _, s := range r.spans {
			if s.service == "gatewayd" && s.attrs["request_id"] == requestID {
				trace = s.trace
			}
		}
		var got []span
		for _, s := range r.spans {
			if trace != "" && s.trace == trace {
				got = append(got, s)
			}
		}
		all := len(r.spans)
		r.mu.Unlock()
		if trace != "" && complete(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trace of request %s is incomplete after 30s (%d spans received); its spans:\n%s", requestID, all, describe(got))
		}
		time.Sleep(100 * time.Millisecond) // the daemons export in batches, every 100 ms here
	}
}

func describe(spans []span) string {
	var b strings.Builder
	for _, s := range spans {
		b.WriteString(s.String() + "\n")
	}
	return b.String()
}

// has reports whether spans hold exactly one span of service with name and kind.
func has(spans []span, service, name string, kind tracepb.Span_SpanKind) bool {
	_, ok := find(spans, service, name, kind)
	return ok
}

// find returns the span of service with name and kind, and whether there is exactly one.
func find(spans []span, service, name string, kind tracepb.Span_SpanKind) (span, bool) {
	var found []span
	for _, s := range spans {
		if s.service == service && s.name == name && s.kind == kind {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		return span{}, false
	}
	return found[0], true
}

// TestTraceAcrossServices: gatewayd, havipd and ipamd run as processes, each exporting spans
// over OTLP/gRPC to a receiver in the test. A HAVIP created through the gateway (any free
// address) is one trace: the gateway's request → its call to havipd → havipd's handling → its
// call to ipamd (through the batch of proposals) → ipamd's handling, each the parent of the
// next, with the account, the HAVIP ID and the subnet on them. A create refused by ipamd (the
// address is taken) carries the refusal's reason on every hop.
func TestTraceAcrossServices(t *testing.T) {
	r, addr := startReceiver(t)
	s := startStack(t, []string{"ipamd", "havipd", "gatewayd"},
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+addr, "OTEL_BSP_SCHEDULE_DELAY=100")

	code, vpc := s.rest("POST", "/v1/vpcs", "setup-vpc", map[string]any{"vpc_name": "v", "cidr_block": "10.0.0.0/16"})
	if code != 200 {
		t.Fatalf("create VPC: %d %v", code, vpc)
	}
	vpcID := field(vpc, "vpc", "vpc_id")
	code, sn := s.rest("POST", "/v1/subnets", "setup-subnet", map[string]any{"vpc_id": vpcID, "subnet_name": "s", "cidr_block": "10.0.0.0/24"})
	if code != 200 {
		t.Fatalf("create subnet: %d %v", code, sn)
	}
	subnetID := field(sn, "subnet", "subnet_id")

	code, hv := s.rest("POST", "/v1/havips", "trace-create", map[string]any{"vpc_id": vpcID, "subnet_id": subnetID, "havip_name": "web"})
	if code != 200 {
		t.Fatalf("create HAVIP: %d %v", code, hv)
	}
	havipID, vip := field(hv, "havip", "havip_id"), field(hv, "havip", "vip")
	const (
		server = tracepb.Span_SPAN_KIND_SERVER
		client = tracepb.Span_SPAN_KIND_CLIENT
	)
	createHaVip, allocate := "havip.v1.HaVipService/CreateHaVip", "ipam.v1.IpamService/ProposePrivateIpAddresses"
	// Each daemon exports in batches of its own, so the trace is complete only once every span
	// the test looks at has arrived.
	spans := r.traceOf(t, "trace-create", func(ss []span) bool {
		return has(ss, "gatewayd", "POST /v1/havips", server) && has(ss, "gatewayd", createHaVip, client) &&
			has(ss, "havipd", createHaVip, server) && has(ss, "havipd", allocate, client) && has(ss, "ipamd", allocate, server)
	})
	t.Logf("the trace of the create:\n%s", describe(spans))
	byID := map[string]span{}
	for _, sp := range spans {
		byID[sp.id] = sp
	}
	gwServer := one(t, spans, "gatewayd", "POST /v1/havips", server)
	gwClient := one(t, spans, "gatewayd", createHaVip, client)
	hvServer := one(t, spans, "havipd", createHaVip, server)
	ipamServer := one(t, spans, "ipamd", allocate, server)
	if gwServer.parent != "" {
		t.Errorf("the gateway's request span has a parent: %v", gwServer)
	}
	// Each hop is the child of the one before; from havipd's handling to its call to ipamd the
	// chain may pass through spans of havipd's own (the batch of proposals).
	if gwClient.parent != gwServer.id {
		t.Errorf("gatewayd's call to havipd is not a child of its request span:\n%v\n%v", gwClient, gwServer)
	}
	if hvServer.parent != gwClient.id {
		t.Errorf("havipd's handling is not a child of gatewayd's call:\n%v\n%v", hvServer, gwClient)
	}
	ipamClient, ok := byID[ipamServer.parent]
	if !ok || ipamClient.service != "havipd" || ipamClient.kind != client || ipamClient.name != allocate {
		t.Fatalf("ipamd's handling is not a child of havipd's call to ipamd: parent %v\n%s", ipamClient, describe(spans))
	}
	up := ipamClient
	for hops := 0; up.id != hvServer.id; hops++ {
		next, ok := byID[up.parent]
		if !ok || next.service != "havipd" || hops > 3 {
			t.Fatalf("havipd's call to ipamd does not descend from its handling of CreateHaVip (stopped at %v):\n%s", up, describe(spans))
		}
		up = next
	}
	for _, c := range []struct {
		sp         span
		key, value string
	}{
		{gwServer, "havip.account", account},
		{hvServer, "havip.account", account},
		{hvServer, "havip.subnet_id", subnetID},
		{hvServer, "havip.havip_id", havipID},
		{ipamServer, "havip.account", account},
		{ipamServer, "havip.subnet_id", subnetID},
		{ipamServer, "havip.owners", havipID},
		{ipamServer, "rpc.response.status_code", "OK"},
	} {
		if got := c.sp.attrs[c.key]; got != c.value {
			t.Errorf("%s %q: %s = %q, want %q", c.sp.service, c.sp.name, c.key, got, c.value)
		}
	}

	// The same address again: ipamd refuses it, and every hop says why.
	code, refused := s.rest("POST", "/v1/havips", "trace-refused", map[string]any{"vpc_id": vpcID, "subnet_id": subnetID, "havip_name": "again", "vip": vip})
	reason := field(refused, "reason")
	if code < 400 || code >= 500 || reason == "" {
		t.Fatalf("create a HAVIP on a taken address: %d %v, want a refusal with a reason", code, refused)
	}
	t.Logf("refused with %d %s", code, reason)
	allocateOne := "ipam.v1.IpamService/AllocatePrivateIpAddress"
	spans = r.traceOf(t, "trace-refused", func(ss []span) bool {
		return has(ss, "gatewayd", "POST /v1/havips", server) && has(ss, "havipd", createHaVip, server) && has(ss, "ipamd", allocateOne, server)
	})
	for _, sp := range []span{
		one(t, spans, "gatewayd", "POST /v1/havips", server),
		one(t, spans, "havipd", createHaVip, server),
		one(t, spans, "ipamd", allocateOne, server),
	} {
		if sp.attrs["havip.reason"] != reason || sp.attrs["havip.account"] != account {
			t.Errorf("%s %q: reason %q, account %q; want %q, %q", sp.service, sp.name, sp.attrs["havip.reason"], sp.attrs["havip.account"], reason, account)
		}
	}
	if sp, _ := find(spans, "ipamd", allocateOne, server); sp.attrs["havip.owner"] == "" {
		t.Errorf("ipamd's refusal does not name the HAVIP it was for: %v", sp)
	}
}

// one is the span of service with name and kind, failing the test unless there is exactly one.
func one(t *testing.T, spans []span, service, name string, kind tracepb.Span_SpanKind) span {
	t.Helper()
	sp, ok := find(spans, service, name, kind)
	if !ok {
		t.Fatalf("not exactly one %s span %q (%s) in the trace:\n%s", service, name, kind, describe(spans))
	}
	return sp
}
