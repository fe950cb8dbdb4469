// Package retry reruns an optimistic etcd write that lost to a concurrent change.
package retry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/metrics"
)

// Attempts is how many times a write is tried before its caller is told to retry.
const Attempts = 8

// OnConflict runs try until it reports done or fails, at most Attempts times; a try reports not
// done when its transaction's comparisons failed (something it read changed). When every try
// lost, it returns an apierr.ErrConflict naming what kept changing.
func OnConflict(ctx context.Context, what string, try func(ctx context.Context) (done bool, err error)) error {
	for i := range Attempts {
		if err := ctx.Err(); err != nil {
			return err
		}
		done, err := try(ctx)
		if err != nil || done {
			return err
		}
		if i < Attempts-1 {
			countConflict(ctx, "retried")
		}
	}
	countConflict(ctx, "gave_up")
	return apierr.Conflict("%s kept changing; try again", what)
}

// conflicts is havip_etcd_conflicts_total{rpc_method, outcome}: the tries that lost to a
// concurrent change, by the gRPC method they served ("" for background work) and by whether
// they were tried again (retried) or their caller was told to retry (gave_up, after Attempts).
var conflicts = metrics.Must(metrics.Meter("github.com/openhavip/havip/platform/retry").Int64Counter("havip.etcd.conflicts",
	metric.WithUnit("{conflict}"), metric.WithDescription("Optimistic etcd writes that lost to a concurrent change, by the gRPC method they served and outcome (retried, gave_up).")))

// countConflict counts a lost try (rare enough to build its attributes each time).
func countConflict(ctx context.Context, outcome string) {
	method, _ := grpc.Method(ctx)
	conflicts.Add(ctx, 1, metric.WithAttributes(attribute.String("rpc_method", method), attribute.String("outcome", outcome)))
}
