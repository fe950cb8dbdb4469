package broker

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/metrics"
)

var meter = metrics.Meter("github.com/openhavip/havip/services/arpbroker/broker")

var (
	// claims is havip_arpbroker_claims_total{result, reason}: every claim the leader judged.
	claims = metrics.Must(meter.Int64Counter("havip.arpbroker.claims", metric.WithUnit("{claim}"),
		metric.WithDescription("Claims judged by the leading broker, by result (accepted, refreshed, deferred, rejected, error) and reason (the rule broken, or the error's reason).")))
	// ownerChange is havip_arpbroker_owner_change_latency_seconds{claim}: from the first
	// announcement an agent saw to the owner change committed.
	ownerChange = metrics.Must(meter.Float64Histogram("havip.arpbroker.owner_change.latency", metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(metrics.SubSecondBuckets...),
		metric.WithDescription("Time from the gratuitous ARP an agent saw to the owner change committed, by claim: immediate, or deferred by the hold-down (which it then includes).")))
	// leaderChanges is havip_arpbroker_leader_changes_total{change}.
	leaderChanges = metrics.Must(meter.Int64Counter("havip.arpbroker.leader.changes", metric.WithUnit("{change}"),
		metric.WithDescription("Times this replica became the broker leader (acquired) or stopped being it (lost).")))
	leaderGauge = metrics.Must(meter.Int64ObservableGauge("havip.arpbroker.leader", metric.WithUnit("{replica}"),
		metric.WithDescription("1 while this replica is the broker leader, else 0: the sum over replicas is 1 when a leader is elected.")))
	sessionsGauge = metrics.Must(meter.Int64ObservableGauge("havip.arpbroker.agent.sessions", metric.WithUnit("{session}"),
		metric.WithDescription("Live agent sessions (etcd leases of agents), as this replica's cache holds them.")))
)

// Measurement options made once.
var (
	immediateClaim = metrics.RecordOptions(attribute.String("claim", "immediate"))
	deferredClaim  = metrics.RecordOptions(attribute.String("claim", "deferred"))
	leaderAcquired = metrics.AddOptions(attribute.String("change", "acquired"))
	leaderLost     = metrics.AddOptions(attribute.String("change", "lost"))
	claimOpts      sync.Map // result + "/" + reason → []metric.AddOption
)

var resultNames = map[Result]string{Accepted: "accepted", Refreshed: "refreshed", Deferred: "deferred", Rejected: "rejected"}

// countClaim counts a judged claim: its outcome, or its error (a claim passed to the leader is
// counted there).
func countClaim(ctx context.Context, out Outcome, err error) {
	if errors.Is(err, ErrNotLeader) {
		return
	}
	result, reason := resultNames[out.Result], ""
	switch {
	case err != nil:
		result, reason = "error", apierr.Reason(err)
	case out.Reject != nil:
		reason = out.Reject.Reason
	}
	key := result + "/" + reason
	opts, ok := claimOpts.Load(key)
	if !ok { // reasons are the rules' and apierr's: a bounded set
		opts, _ = claimOpts.LoadOrStore(key, metrics.AddOptions(attribute.String("result", result), attribute.String("reason", reason)))
	}
	claims.Add(ctx, 1, opts.([]metric.AddOption)...)
}

// recordOwnerChange measures an owner change committed now for a report.
func recordOwnerChange(ctx context.Context, r Report) {
	if r.Seen.IsZero() {
		return
	}
	opts := immediateClaim
	if r.deferred {
		opts = deferredClaim
	}
	ownerChange.Record(ctx, max(0, time.Since(r.Seen).Seconds()), opts...)
}

// liveBrokers holds the started brokers until their context ends, for the gauges.
var liveBrokers sync.Map // *Broker → struct{}

func init() {
	_ = metrics.Must(meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		var leading, sessions int64
		found := false
		liveBrokers.Range(func(k, _ any) bool {
			b := k.(*Broker)
			found = true
			if b.IsLeader() {
				leading++
			}
			sessions = max(sessions, int64(b.sessions.Len()))
			return true
		})
		if found {
			o.ObserveInt64(leaderGauge, leading)
			o.ObserveInt64(sessionsGauge, sessions)
		}
		return nil
	}, leaderGauge, sessionsGauge))
}
