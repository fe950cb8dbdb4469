package security_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/authz"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/service"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/eip"
	"github.com/openhavip/havip/services/havip"
	"github.com/openhavip/havip/services/ipam"
)

// The kinds of method, as this test sees them (written out here, not read from the policy).
const (
	public   = "health, reflection"
	tenantM  = "tenant"
	agentM   = "agent"
	observer = "observer"
)

// services are every service the platform serves, with the kind of each of its methods.
var services = []struct {
	desc grpc.ServiceDesc
	kind func(method string) string
}{
	{healthpb.Health_ServiceDesc, func(string) string { return public }},
	{reflectionpb.ServerReflection_ServiceDesc, func(string) string { return public }},
	{ipamv1.IpamService_ServiceDesc, func(string) string { return tenantM }},
	{havipv1.HaVipService_ServiceDesc, func(string) string { return tenantM }},
	{eipv1.EipService_ServiceDesc, func(string) string { return tenantM }},
	{eipv1.NatRuleService_ServiceDesc, func(string) string { return observer }},
	{arpbrokerv1.ArpBrokerService_ServiceDesc, func(m string) string {
		switch m {
		case "WatchOwnership", "ListArpRejections":
			return observer
		}
		return agentM
	}},
}

const (
	ok           = "allowed"
	unauthn      = "Unauthenticated"
	denied       = "PermissionDenied"
	matrixAcct   = "acct-matrix"
	anotherAgent = "spiffe://havip.local/agent/host-b"
)

// caller is one identity with one set of credentials in its metadata.
type caller struct {
	name string
	id   identity.ID
	md   func(key string) []string // metadata pairs, given the tenant's valid API key
	want map[string]string         // method kind → outcome
}

func account(string) []string    { return []string{tenant.MetadataKey, matrixAcct} }
func bearer(key string) []string { return []string{authz.AuthorizationKey, "Bearer " + key} }
func none(string) []string       { return nil }

// callers is the matrix: every identity kind, bare, asserting an account, with a tenant's API
// key, and the forms that must be refused.
var callers = []caller{
	{"operator", mtlstest.Operator, none, map[string]string{public: ok, tenantM: unauthn, agentM: denied, observer: ok}},
	{"operator asserting an account", mtlstest.Operator, account, map[string]string{public: ok, tenantM: ok, agentM: denied, observer: ok}},
	{"operator with a tenant's key", mtlstest.Operator, bearer, map[string]string{public: ok, tenantM: ok, agentM: denied, observer: ok}},
	{"gateway", mtlstest.Gateway, none, map[string]string{public: ok, tenantM: unauthn, agentM: denied, observer: denied}},
	{"gateway asserting an account", mtlstest.Gateway, account, map[string]string{public: ok, tenantM: ok, agentM: denied, observer: denied}},
	{"gateway with a tenant's key", mtlstest.Gateway, bearer, map[string]string{public: ok, tenantM: ok, agentM: denied, observer: denied}},
	{"service", mtlstest.Service, none, map[string]string{public: ok, tenantM: unauthn, agentM: denied, observer: ok}},
	{"service asserting an account", mtlstest.Service, account, map[string]string{public: ok, tenantM: ok, agentM: denied, observer: ok}},
	{"service passing on an agent's call", mtlstest.Service, func(string) []string { return []string{authz.AgentKey, anotherAgent} },
		map[string]string{public: ok, tenantM: unauthn, agentM: ok, observer: ok}},
	{"a service that forwards no agent naming one", identity.ID{Kind: identity.Service, Name: "ipamd"}, func(string) []string { return []string{authz.AgentKey, anotherAgent} },
		map[string]string{public: ok, tenantM: unauthn, agentM: denied, observer: ok}},
	{"agent", mtlstest.Agent("host-a"), none, map[string]string{public: ok, tenantM: unauthn, agentM: ok, observer: ok}},
	{"agent asserting an account", mtlstest.Agent("host-a"), account, map[string]string{public: ok, tenantM: denied, agentM: ok, observer: ok}},
	{"agent with a tenant's key", mtlstest.Agent("host-a"), bearer, map[string]string{public: ok, tenantM: ok, agentM: ok, observer: ok}},
	{"agent naming another agent", mtlstest.Agent("host-a"), func(string) []string { return []string{authz.AgentKey, anotherAgent} },
		map[string]string{public: ok, tenantM: unauthn, agentM: denied, observer: ok}},
	{"data plane", mtlstest.DataPlane, none, map[string]string{public: ok, tenantM: unauthn, agentM: denied, observer: ok}},
	{"data plane asserting an account", mtlstest.DataPlane, account, map[string]string{public: ok, tenantM: denied, agentM: denied, observer: ok}},
	{"client", mtlstest.Client, none, map[string]string{public: ok, tenantM: unauthn, agentM: denied, observer: denied}},
	{"client asserting an account", mtlstest.Client, account, map[string]string{public: ok, tenantM: denied, agentM: denied, observer: denied}},
	{"client with a tenant's key", mtlstest.Client, bearer, map[string]string{public: ok, tenantM: ok, agentM: denied, observer: denied}},
	{"client with an unknown key", mtlstest.Client, func(string) []string { return bearer("havip_notakey") },
		map[string]string{public: ok, tenantM: unauthn, agentM: denied, observer: denied}},
	{"client with a malformed authorization", mtlstest.Client, func(key string) []string { return []string{authz.AuthorizationKey, "Basic " + key} },
		map[string]string{public: ok, tenantM: unauthn, agentM: denied, observer: denied}},
	{"gateway with a key and an account", mtlstest.Gateway, func(key string) []string { return append(bearer(key), account(key)...) },
		map[string]string{public: ok, tenantM: unauthn, agentM: denied, observer: denied}},
	{"operator asserting two accounts", mtlstest.Operator, func(string) []string {
		return []string{tenant.MetadataKey, matrixAcct, tenant.MetadataKey, "acct-other"}
	}, map[string]string{public: ok, tenantM: unauthn, agentM: denied, observer: ok}},
}

// TestIdentityMethodMatrix: every method of every service, called by every kind of identity
// with each form of credentials, over mTLS to a replica serving all of them, is allowed or
// refused as the matrix says, refused with the right code (and reason) before its handler runs.
func TestIdentityMethodMatrix(t *testing.T) {
	key := apikey.New()
	keys, err := apikey.Parse(strings.NewReader(apikey.Line(matrixAcct, key)))
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := etcdtest.ServeKeys(t, etcdEndpoint, keys, ipam.Module, service.Must(havip.NewModule(havip.Config{})),
		service.Must(arpbroker.NewModule(arpbroker.Config{})), service.Must(eip.NewModule(eip.Config{})))
	addr := conn.Target()
	methods := 0
	for _, s := range services {
		for _, m := range s.desc.Methods {
			methods++
			if _, ok := authz.Lookup("/" + s.desc.ServiceName + "/" + m.MethodName); !ok {
				t.Errorf("the policy does not name %s/%s", s.desc.ServiceName, m.MethodName)
			}
		}
		for _, m := range s.desc.Streams {
			methods++
			if _, ok := authz.Lookup("/" + s.desc.ServiceName + "/" + m.StreamName); !ok {
				t.Errorf("the policy does not name %s/%s", s.desc.ServiceName, m.StreamName)
			}
		}
	}
	t.Logf("%d methods × %d callers", methods, len(callers))
	for _, c := range callers {
		t.Run(c.name, func(t *testing.T) {
			cc := etcdtest.DialAs(t, addr, c.id)
			for _, s := range services {
				for _, m := range s.desc.Methods {
					check(t, cc, c, s.desc.ServiceName, m.MethodName, s.kind(m.MethodName), key, nil)
				}
				for _, m := range s.desc.Streams {
					check(t, cc, c, s.desc.ServiceName, m.StreamName, s.kind(m.StreamName), key, &m)
				}
			}
		})
	}
}

// check makes one call (a stream sends one empty message) and compares the outcome: refused
// with the expected code, or answered by the handler (any code but the two of refusal).
func check(t *testing.T, cc *grpc.ClientConn, c caller, svc, method, kind, key string, stream *grpc.StreamDesc) {
	t.Helper()
	full := "/" + svc + "/" + method
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if md := c.md(key); md != nil {
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
	}
	var err error
	if stream == nil {
		err = cc.Invoke(ctx, full, &emptypb.Empty{}, &emptypb.Empty{})
	} else {
		var cs grpc.ClientStream
		cs, err = cc.NewStream(ctx, stream, full)
		if err == nil {
			_ = cs.SendMsg(&emptypb.Empty{}) // a refused stream's status comes with RecvMsg
			_ = cs.CloseSend()
			err = cs.RecvMsg(&emptypb.Empty{}) // the first answer, or the refusal
		}
	}
	want := c.want[kind]
	got := ok
	switch code := status.Code(err); code {
	case codes.Unauthenticated, codes.PermissionDenied:
		got = code.String()
	case codes.DeadlineExceeded, codes.Unavailable, codes.Internal, codes.Unknown, codes.Unimplemented:
		t.Errorf("%s: %v", method, err)
		return
	}
	if got != want {
		t.Errorf("%s (%s method): %s (%v), want %s", full, kind, got, err, want)
		return
	}
	reasons := map[string]string{unauthn: apierr.ReasonAuthFailure, denied: apierr.ReasonUnauthorizedOperation}
	if got != ok && apierr.Reason(err) != reasons[got] {
		t.Errorf("%s: refused with reason %q (%v), want %q", full, apierr.Reason(err), err, reasons[got])
	}
}
