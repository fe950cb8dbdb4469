package server

import (
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/metrics"
	"github.com/openhavip/havip/services/eip/natrule"
	"github.com/openhavip/havip/services/eip/store"
)

// natLag is havip_eip_nat_rule_stream_lag_seconds: from the change of a NAT rule reaching this
// replica (its revision applied) to the rule sent on a WatchNatRules stream.
var natLag = metrics.Must(metrics.Meter("github.com/openhavip/havip/services/eip/server").Float64Histogram("havip.eip.nat_rule.stream.lag",
	metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(metrics.FastBuckets...),
	metric.WithDescription("Time from a NAT rule's change applied by this replica (the watch delivering its etcd revision) to the rule sent on a WatchNatRules stream.")))

// NatServer serves eip.v1.NatRuleService, the data planes' feed.
type NatServer struct {
	eipv1.UnimplementedNatRuleServiceServer
	store *store.Store
}

// NewNat returns the NAT rule server over a started store.
func NewNat(st *store.Store) *NatServer { return &NatServer{store: st} }

func natRulePB(r natrule.Rule) *eipv1.NatRule {
	return &eipv1.NatRule{
		AddressId: r.AddressID, PublicIp: r.PublicIP, PrivateIp: r.PrivateIP, HavipId: r.HaVipID,
		NetworkInterfaceId: r.NetworkInterfaceID, InstanceId: r.InstanceID, HostId: r.HostID,
		BindingRevision: r.BindingRevision, OwnerRevision: r.OwnerRevision, Removed: r.Removed, VpcId: r.VpcID,
	}
}

// WatchNatRules streams a snapshot of every NAT rule, then their changes.
func (s *NatServer) WatchNatRules(_ *eipv1.WatchNatRulesRequest, stream grpc.ServerStreamingServer[eipv1.WatchNatRulesResponse]) error {
	snap, changes, err := s.store.WatchNatRules(stream.Context())
	if err != nil {
		return err
	}
	first := &eipv1.WatchNatRulesResponse{Snapshot: true, Rules: make([]*eipv1.NatRule, 0, len(snap))}
	for _, r := range snap {
		first.Rules = append(first.Rules, natRulePB(r))
	}
	if err := stream.Send(first); err != nil {
		return err
	}
	for batch := range changes {
		msg := &eipv1.WatchNatRulesResponse{Rules: make([]*eipv1.NatRule, 0, len(batch))}
		for _, r := range batch {
			msg.Rules = append(msg.Rules, natRulePB(r))
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
		for _, r := range batch {
			if !r.Changed.IsZero() {
				natLag.Record(stream.Context(), time.Since(r.Changed).Seconds())
			}
		}
	}
	if err := stream.Context().Err(); err != nil {
		return err
	}
	return apierr.New(apierr.ReasonUnavailable, "watcher fell behind; watch again")
}
