// Package server implements arpbroker.v1.ArpBrokerService; a follower passes claims to the leader.
package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/authz"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/metrics"
	"github.com/openhavip/havip/platform/validate"
	"github.com/openhavip/havip/services/arpbroker/broker"
)

// reportStreams is havip_arpbroker_report_streams: the agents' report streams open on this
// replica.
var reportStreams = metrics.Must(metrics.Meter("github.com/openhavip/havip/services/arpbroker/server").Int64UpDownCounter("havip.arpbroker.report_streams",
	metric.WithUnit("{stream}"), metric.WithDescription("Agents' report streams (StreamArpAnnouncements) open on this replica.")))

// Server serves arpbroker.v1.ArpBrokerService from a broker.
type Server struct {
	arpbrokerv1.UnimplementedArpBrokerServiceServer
	b *broker.Broker

	dial  []grpc.DialOption
	mu    sync.Mutex
	peers map[string]*grpc.ClientConn // leader address → connection, for forwarding

	judges *judges // the streams' reports run on these
	log    *slog.Logger
}

// New returns a server over a started broker; dial are the options of its connections to the
// leader (this replica's certificate).
func New(b *broker.Broker, dial []grpc.DialOption, log *slog.Logger) *Server {
	return &Server{b: b, dial: dial, peers: map[string]*grpc.ClientConn{}, judges: newJudges(), log: log}
}

// agentOf is the agent a call acts for, as platform/authz found it, and the identity its
// sessions are recorded under ("" on a plaintext development server).
func agentOf(ctx context.Context) (identity.ID, string, error) {
	id, ok := authz.Agent(ctx)
	switch {
	case !ok:
		return identity.ID{}, "", apierr.AuthFailure("no agent identity")
	case id.Kind == identity.Dev:
		return id, "", nil
	}
	return id, id.String(), nil
}

// Close closes the connections to other replicas, and ends the streams' idle judges.
func (s *Server) Close() {
	s.judges.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.peers {
		_ = c.Close()
	}
}

// OpenSession starts an agent's session.
func (s *Server) OpenSession(ctx context.Context, req *arpbrokerv1.OpenSessionRequest) (*arpbrokerv1.OpenSessionResponse, error) {
	if err := validate.Name("agent_id", req.GetAgentId()); err != nil {
		return nil, err
	}
	ttl := req.GetTtlSeconds()
	if ttl == 0 {
		ttl = 10
	}
	if ttl < 2 || ttl > 60 {
		return nil, apierr.New(apierr.ReasonRange, "ttl_seconds must be 2 to 60")
	}
	agent, ident, err := agentOf(ctx)
	if err != nil {
		return nil, err
	}
	host := req.GetHostId()
	if agent.Kind == identity.Agent { // an agent speaks for its own host only
		if host == "" {
			host = agent.Name
		}
		if host != agent.Name {
			return nil, apierr.New(apierr.ReasonUnauthorizedOperation, "%s may open sessions only for host %q, not %q", agent, agent.Name, host)
		}
	}
	if err := validate.Name("host_id", host); err != nil {
		return nil, err
	}
	id, err := s.b.OpenSession(ctx, broker.Session{AgentID: req.GetAgentId(), HostID: host, Identity: ident}, time.Duration(ttl)*time.Second)
	if err != nil {
		return nil, err
	}
	return &arpbrokerv1.OpenSessionResponse{SessionId: id, TtlSeconds: ttl}, nil
}

// KeepAliveSession renews a session.
func (s *Server) KeepAliveSession(ctx context.Context, req *arpbrokerv1.KeepAliveSessionRequest) (*arpbrokerv1.KeepAliveSessionResponse, error) {
	_, ident, err := agentOf(ctx)
	if err != nil {
		return nil, err
	}
	ttl, err := s.b.KeepAlive(ctx, req.GetSessionId(), req.GetAgentId(), ident)
	if apierr.Reason(err) != "" {
		return nil, err
	}
	if err != nil || ttl <= 0 {
		return nil, apierr.NotFound("session %d has expired; open a new one", req.GetSessionId())
	}
	return &arpbrokerv1.KeepAliveSessionResponse{TtlSeconds: uint32(ttl / time.Second)}, nil
}

var results = map[broker.Result]arpbrokerv1.ClaimResult{
	broker.Accepted:  arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED,
	broker.Refreshed: arpbrokerv1.ClaimResult_CLAIM_RESULT_REFRESHED,
	broker.Rejected:  arpbrokerv1.ClaimResult_CLAIM_RESULT_REJECTED,
	broker.Deferred:  arpbrokerv1.ClaimResult_CLAIM_RESULT_DEFERRED,
}

// maxSeenAge bounds the age of a GARP an agent reports: an agent queues reports for seconds at
// most (a longer age is a wrong clock or a lie).
const maxSeenAge = 30 * time.Second

// ReportArpAnnouncement judges one announcement; a follower forwards it to the leader.
func (s *Server) ReportArpAnnouncement(ctx context.Context, req *arpbrokerv1.ReportArpAnnouncementRequest) (*arpbrokerv1.ReportArpAnnouncementResponse, error) {
	return s.report(ctx, req, time.Now())
}

// claimTimeout bounds the judging of one report from its arrival (a stream's report waiting for
// its VIP's report before it included), forwarding included: a replica cut off from etcd (or
// from the leader) answers Unavailable within it rather than holding the agent's stream for as
// long as the partition lasts, and the agent reports to another replica.
const claimTimeout = 3 * time.Second

// report judges an announcement that arrived at received.
func (s *Server) report(ctx context.Context, req *arpbrokerv1.ReportArpAnnouncementRequest, received time.Time) (*arpbrokerv1.ReportArpAnnouncementResponse, error) {
	parent := ctx
	ctx, cancel := context.WithDeadline(ctx, received.Add(claimTimeout))
	defer cancel()
	resp, err := s.judge(ctx, req, received)
	if err != nil && parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, apierr.New(apierr.ReasonUnavailable, "no decision within %v: this replica cannot reach etcd or the leader now; report to another", claimTimeout)
	}
	return resp, err
}

// judge decides a report here (as the leader) or forwards it to the leader.
func (s *Server) judge(ctx context.Context, req *arpbrokerv1.ReportArpAnnouncementRequest, received time.Time) (*arpbrokerv1.ReportArpAnnouncementResponse, error) {
	// When the agent saw the packet, on this clock: the report's arrival less the age it gives
	// (at most maxSeenAge: an agent's word must not skew the latency measured by much).
	seen := received.Add(-min(max(0, req.GetSeenAge().AsDuration()), maxSeenAge))
	if err := validate.ID("network_interface_id", ids.NetworkInterface, req.GetNetworkInterfaceId()); err != nil {
		return nil, err
	}
	agent, ident, err := agentOf(ctx)
	if err != nil {
		return nil, err
	}
	out, err := s.b.Claim(ctx, broker.Report{
		AgentID: req.GetAgentId(), Identity: ident, Session: req.GetSessionId(), NetworkInterfaceID: req.GetNetworkInterfaceId(),
		EthernetSourceMAC: req.GetEthernetSourceMac(), SenderMAC: req.GetSenderMac(),
		SenderIP: req.GetSenderIp(), TargetIP: req.GetTargetIp(), Op: broker.Operation(req.GetOperation()), Seen: seen,
	})
	if errors.Is(err, broker.ErrNotLeader) {
		fwd := proto.CloneOf(req)
		fwd.SeenAge = durationpb.New(time.Since(seen)) // the time spent here counts too
		return s.forward(ctx, agent, fwd)
	}
	if err != nil {
		return nil, err
	}
	resp := &arpbrokerv1.ReportArpAnnouncementResponse{Result: results[out.Result], HavipId: out.HaVipID, Revision: out.Revision}
	if out.Reject != nil {
		resp.Reason = out.Reject.Reason
	}
	return resp, nil
}

// forward passes a claim to the elected replica, naming the agent it acts for (the leader
// trusts that from a service identity only).
func (s *Server) forward(ctx context.Context, agent identity.ID, req *arpbrokerv1.ReportArpAnnouncementRequest) (*arpbrokerv1.ReportArpAnnouncementResponse, error) {
	addr, err := s.b.Leader(ctx)
	if err != nil {
		return nil, apierr.New(apierr.ReasonUnavailable, "%v", err)
	}
	s.mu.Lock()
	conn := s.peers[addr]
	if conn == nil {
		conn, err = grpc.NewClient(addr, s.dial...)
		if err == nil {
			s.peers[addr] = conn
		}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	md, ok := metadata.FromOutgoingContext(ctx) // a copy
	if !ok {
		md = metadata.MD{}
	}
	if agent.Kind == identity.Agent {
		md.Set(authz.AgentKey, agent.String())
	}
	return arpbrokerv1.NewArpBrokerServiceClient(conn).ReportArpAnnouncement(metadata.NewOutgoingContext(ctx, md), req)
}

func ownershipPB(c broker.OwnerChange) *arpbrokerv1.Ownership {
	o := &arpbrokerv1.Ownership{HavipId: c.HaVipID, Revision: c.Revision}
	if c.Owner != nil {
		o.Vip = c.Owner.VIP.String()
		o.NetworkInterfaceId, o.InstanceId, o.HostId = c.Owner.NetworkInterfaceID, c.Owner.InstanceID, c.Owner.HostID
		o.ChangedTime, o.VpcId = timestamppb.New(c.Owner.Changed), c.Owner.VpcID
	}
	return o
}

// WatchOwnership streams the owners, then their changes.
func (s *Server) WatchOwnership(_ *arpbrokerv1.WatchOwnershipRequest, stream grpc.ServerStreamingServer[arpbrokerv1.WatchOwnershipResponse]) error {
	snap, changes, err := s.b.Subscribe(stream.Context())
	if err != nil {
		return err
	}
	first := &arpbrokerv1.WatchOwnershipResponse{Snapshot: true}
	for _, c := range snap {
		first.Ownerships = append(first.Ownerships, ownershipPB(c))
	}
	if err := stream.Send(first); err != nil {
		return err
	}
	for batch := range changes {
		msg := &arpbrokerv1.WatchOwnershipResponse{}
		for _, c := range batch {
			msg.Ownerships = append(msg.Ownerships, ownershipPB(c))
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	if err := stream.Context().Err(); err != nil {
		return err
	}
	return apierr.New(apierr.ReasonUnavailable, "watcher fell behind; watch again")
}

// ListArpRejections lists a HAVIP's recent rejected claims.
func (s *Server) ListArpRejections(ctx context.Context, req *arpbrokerv1.ListArpRejectionsRequest) (*arpbrokerv1.ListArpRejectionsResponse, error) {
	var index, value string
	n := 0
	if v := req.GetHavipId(); v != "" {
		if err := validate.ID("havip_id", ids.HaVip, v); err != nil {
			return nil, err
		}
		index, value, n = broker.ByHaVip, v, n+1
	}
	if v := req.GetVip(); v != "" {
		a, err := validate.IPv4("vip", v)
		if err != nil {
			return nil, err
		}
		index, value, n = broker.ByVIP, a.String(), n+1
	}
	if v := req.GetNetworkInterfaceId(); v != "" {
		if err := validate.ID("network_interface_id", ids.NetworkInterface, v); err != nil {
			return nil, err
		}
		index, value, n = broker.ByENI, v, n+1
	}
	if n != 1 {
		return nil, apierr.New(apierr.ReasonCoexist, "give exactly one of havip_id, vip and network_interface_id")
	}
	rs, err := s.b.Rejections(ctx, index, value, 50)
	if err != nil {
		return nil, err
	}
	out := &arpbrokerv1.ListArpRejectionsResponse{}
	for _, r := range rs {
		out.RejectionSet = append(out.RejectionSet, &arpbrokerv1.ArpRejection{
			Time: timestamppb.New(r.Time), AgentId: r.AgentID, Identity: r.Identity, NetworkInterfaceId: r.NetworkInterfaceID, Reason: r.Reason, Message: r.Message,
			HavipId: r.HaVipID, Vip: r.VIP,
		})
	}
	return out, nil
}
