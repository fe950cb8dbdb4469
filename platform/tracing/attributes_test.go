package tracing_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/openhavip/havip/platform/tracing"
)

// TestMessageAttributes: the IDs of a message become attributes, from its top level and one
// level down; other fields and non-messages give none. (errdetails and grpc_testing messages
// stand in for the services' own, which this module cannot import.)
func TestMessageAttributes(t *testing.T) {
	type kv = attribute.KeyValue
	for _, tc := range []struct {
		name string
		msg  any
		want []kv
	}{
		{"not a message", "havip_id", nil},
		{"no ID fields", &testgrpc.SimpleRequest{FillUsername: true}, nil},
		{"a field named like none", &errdetails.ResourceInfo{ResourceName: "havip-1", Owner: "acct-1"}, []kv{tracing.Owner.String("acct-1")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tracing.MessageAttributes(tc.msg)
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b kv) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
