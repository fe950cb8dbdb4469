// Package authz decides, from one table, which identities may call each gRPC method, and for which account or host.
package authz

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/inproc"
	"github.com/openhavip/havip/platform/tenant"
)

// Access is who may call a method.
type Access string

// The kinds of access.
const (
	// AnyIdentity lets every caller with a valid certificate call (health, reflection).
	AnyIdentity Access = "any identity"
	// Tenant needs an account: a Bearer API key (authorization metadata) from any identity, or
	// the x-havip-account metadata asserted by a gateway, service or operator identity.
	Tenant Access = "tenant"
	// AgentOnly lets host agents call, each for its own host; a broker replica (AgentForwarders)
	// may pass on an agent's call to the leader naming the agent in x-havip-agent.
	AgentOnly Access = "agent"
	// Observer lets agents, services, data-plane components and operators call: the streams and
	// listings that show every tenant's state. Never a tenant key, never the gateway.
	Observer Access = "observer"
)

// Rule gives the access to a method: Method is a full method name ("/pkg.Service/Method") or a
// whole service ("/pkg.Service/").
type Rule struct {
	Method string
	Access Access
}

// Policy is the platform's whole authorization policy. A method it does not name is refused.
var Policy = []Rule{
	{"/grpc.health.v1.Health/", AnyIdentity},
	{"/grpc.reflection.v1.ServerReflection/", AnyIdentity},
	{"/grpc.reflection.v1alpha.ServerReflection/", AnyIdentity},
	{"/ipam.v1.IpamService/", Tenant},
	{"/havip.v1.HaVipService/", Tenant},
	{"/eip.v1.EipService/", Tenant},
	{"/arpbroker.v1.ArpBrokerService/OpenSession", AgentOnly},
	{"/arpbroker.v1.ArpBrokerService/KeepAliveSession", AgentOnly},
	{"/arpbroker.v1.ArpBrokerService/ReportArpAnnouncement", AgentOnly},
	{"/arpbroker.v1.ArpBrokerService/StreamArpAnnouncements", AgentOnly},
	{"/arpbroker.v1.ArpBrokerService/WatchOwnership", Observer},
	{"/arpbroker.v1.ArpBrokerService/ListArpRejections", Observer},
	{"/eip.v1.NatRuleService/WatchNatRules", Observer},
}

// AgentForwarders are the services that pass agents' calls on (a broker follower to its
// leader): arpbrokerd, and the suite, which runs it.
var AgentForwarders = []string{"arpbrokerd", "havip-suite"}

// Metadata keys the policy reads.
const (
	// AuthorizationKey carries "Bearer <API key>".
	AuthorizationKey = "authorization"
	// AgentKey names, as a SPIFFE ID, the agent a service passes a call on for.
	AgentKey = "x-havip-agent"
)

// Lookup returns the access Policy gives method; ok is false when it names none.
func Lookup(method string) (Access, bool) { return lookup(Policy, method) }

func lookup(rules []Rule, method string) (Access, bool) {
	var best Rule
	for _, r := range rules {
		if r.Method == method {
			return r.Access, true
		}
		if strings.HasSuffix(r.Method, "/") && strings.HasPrefix(method, r.Method) && len(r.Method) > len(best.Method) {
			best = r
		}
	}
	return best.Access, best.Method != ""
}

// Authorizer applies Policy to each call.
type Authorizer struct {
	rules     []Rule
	keys      *apikey.Keys
	self      identity.ID
	plaintext bool
}

// New returns an Authorizer. keys checks Bearer API keys (nil: none is accepted); self is the
// identity of calls made in process (platform/inproc, or with no peer at all); plaintext says the
// server serves without TLS (development), where every caller is identity.Dev.
func New(keys *apikey.Keys, self identity.ID, plaintext bool) *Authorizer {
	return &Authorizer{rules: Policy, keys: keys, self: self, plaintext: plaintext}
}

// With returns a copy of a that also applies rules: for services outside the platform's own,
// such as examples' and tests'.
func (a *Authorizer) With(rules ...Rule) *Authorizer {
	b := *a
	b.rules = append(slices.Clip(a.rules), rules...)
	return &b
}

// caller returns the identity of the call's peer.
func (a *Authorizer) caller(ctx context.Context) (identity.ID, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p == nil { // an interceptor called directly, in process
		return a.self, nil
	}
	if _, local := p.AuthInfo.(inproc.AuthInfo); local { // through platform/inproc
		return a.self, nil
	}
	info, isTLS := p.AuthInfo.(credentials.TLSInfo)
	if !isTLS {
		if a.plaintext {
			return identity.ID{Kind: identity.Dev}, nil
		}
		return identity.ID{}, apierr.AuthFailure("a client certificate is required")
	}
	if len(info.State.PeerCertificates) == 0 {
		return identity.ID{}, apierr.AuthFailure("a client certificate is required")
	}
	id, err := identity.FromCert(info.State.PeerCertificates[0])
	if err != nil {
		return identity.ID{}, apierr.AuthFailure("%v", err)
	}
	return id, nil
}

// Authorize checks a call of method against the policy and returns its context carrying the
// caller's identity, and the account (Tenant) or the acting agent (AgentOnly).
func (a *Authorizer) Authorize(ctx context.Context, method string) (context.Context, error) {
	id, err := a.caller(ctx)
	if err != nil {
		return nil, err
	}
	ctx = identity.NewContext(ctx, id)
	access, ok := lookup(a.rules, method)
	if !ok {
		return nil, denied(id, method)
	}
	switch access {
	case AnyIdentity:
		return ctx, nil
	case Tenant:
		account, err := a.account(ctx, id)
		if err != nil {
			return nil, err
		}
		return tenant.WithAccount(ctx, account), nil
	case AgentOnly:
		agent, err := actingAgent(ctx, id, method)
		if err != nil {
			return nil, err
		}
		return context.WithValue(ctx, agentKey{}, agent), nil
	case Observer:
		switch id.Kind {
		case identity.Agent, identity.Service, identity.DataPlane, identity.Operator, identity.Dev:
			return ctx, nil
		}
	}
	return nil, denied(id, method)
}

func denied(id identity.ID, method string) error {
	return apierr.New(apierr.ReasonUnauthorizedOperation, "%s may not call %s", id, method)
}

// one returns the single value of metadata key (empty when absent), refusing repeats.
func one(ctx context.Context, key string) (string, error) {
	vals := metadata.ValueFromIncomingContext(ctx, key)
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
		return vals[0], nil
	}
	return "", apierr.AuthFailure("metadata %q given %d times", key, len(vals))
}

// account finds the account a tenant call acts for.
func (a *Authorizer) account(ctx context.Context, id identity.ID) (string, error) {
	asserted, err := one(ctx, tenant.MetadataKey)
	if err != nil {
		return "", err
	}
	auth, err := one(ctx, AuthorizationKey)
	if err != nil {
		return "", err
	}
	switch {
	case asserted != "" && auth != "":
		return "", apierr.AuthFailure("give either an API key (authorization) or %q, not both", tenant.MetadataKey)
	case auth != "":
		key, ok := apikey.Bearer(auth)
		if !ok {
			return "", apierr.AuthFailure("authorization: want \"Bearer <API key>\"")
		}
		if a.keys == nil {
			return "", apierr.AuthFailure("this server takes no API keys")
		}
		account, known := a.keys.Account(key)
		if !known {
			return "", apierr.AuthFailure("unknown API key")
		}
		return account, nil
	case asserted != "":
		switch id.Kind {
		case identity.Gateway, identity.Service, identity.Operator, identity.Dev:
		default:
			return "", apierr.New(apierr.ReasonUnauthorizedOperation, "%s may not assert %q: use an API key (authorization: Bearer <key>)", id, tenant.MetadataKey)
		}
		if !tenant.ValidAccount(asserted) {
			return "", apierr.AuthFailure("metadata %q is not a valid account", tenant.MetadataKey)
		}
		return asserted, nil
	}
	return "", apierr.AuthFailure("an account is required: authorization: Bearer <API key>, or %q from a gateway, service or operator", tenant.MetadataKey)
}

// actingAgent is the agent an agent method acts for: the caller itself, or the agent a
// service passes the call on for.
func actingAgent(ctx context.Context, id identity.ID, method string) (identity.ID, error) {
	named, err := one(ctx, AgentKey)
	if err != nil {
		return identity.ID{}, err
	}
	switch {
	case named == "" && (id.Kind == identity.Agent || id.Kind == identity.Dev):
		return id, nil
	case named != "" && (id.Kind == identity.Service && slices.Contains(AgentForwarders, id.Name) || id.Kind == identity.Dev):
		agent, err := identity.Parse(named)
		if err != nil || agent.Kind != identity.Agent {
			return identity.ID{}, apierr.AuthFailure("metadata %q: want an agent's SPIFFE ID", AgentKey)
		}
		return agent, nil
	case named != "":
		return identity.ID{}, apierr.New(apierr.ReasonUnauthorizedOperation, "%s may not act for another agent (%q)", id, AgentKey)
	}
	return identity.ID{}, denied(id, method)
}

type agentKey struct{}

// Agent returns the agent an agent method acts for (identity.Dev on a plaintext server).
func Agent(ctx context.Context) (identity.ID, bool) {
	id, ok := ctx.Value(agentKey{}).(identity.ID)
	return id, ok
}

// UnaryServerInterceptor authorizes each unary call.
func (a *Authorizer) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.Authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor authorizes each stream.
func (a *Authorizer) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.Authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &stream{ServerStream: ss, ctx: ctx})
	}
}

type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }
