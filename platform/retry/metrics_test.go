package retry_test

import (
	"context"
	"testing"

	"github.com/openhavip/havip/platform/metrics/metricstest"
	"github.com/openhavip/havip/platform/retry"
)

// TestConflictsCounted: a write that loses every try counts Attempts-1 retries and one give-up
// (havip_etcd_conflicts_total), for background work under no gRPC method.
func TestConflictsCounted(t *testing.T) {
	addr := metricstest.Start(t)
	count := func(outcome string) float64 {
		v, _ := metricstest.Value(metricstest.Families(t, metricstest.Get(t, addr)), "havip_etcd_conflicts_total", map[string]string{"outcome": outcome, "rpc_method": ""})
		return v
	}
	retried, gaveUp := count("retried"), count("gave_up") // the parallel tests run after this one
	_ = retry.OnConflict(context.Background(), "HAVIP havip-1", func(context.Context) (bool, error) { return false, nil })
	if got := count("retried") - retried; got != retry.Attempts-1 {
		t.Errorf("retried: %v more, want %d", got, retry.Attempts-1)
	}
	if got := count("gave_up") - gaveUp; got != 1 {
		t.Errorf("gave_up: %v more, want 1", got)
	}
	_ = retry.OnConflict(context.Background(), "HAVIP havip-1", func(context.Context) (bool, error) { return true, nil })
	if got := count("retried") - retried; got != retry.Attempts-1 {
		t.Errorf("a first try that wins counted a retry (%v)", got)
	}
}
