package etcdx

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"

	"github.com/openhavip/havip/platform/metrics"
)

// txnMethod is etcd's gRPC method of a transaction.
const txnMethod = "/etcdserverpb.KV/Txn"

// txnDuration is havip_etcd_txn_duration_seconds{result}: every transaction a client of
// ConnectTLS commits, by its result.
var txnDuration = metrics.Must(metrics.Meter("github.com/openhavip/havip/platform/etcdx").Float64Histogram("havip.etcd.txn.duration",
	metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(metrics.FastBuckets...),
	metric.WithDescription("Latency of etcd transactions, by result: succeeded, compare_failed (a guard did not hold: a conflict, or a create of what exists) or error.")))

// The results of a transaction, each an attribute set made once.
var (
	txnSucceeded     = metrics.RecordOptions(attribute.String("result", "succeeded"))
	txnCompareFailed = metrics.RecordOptions(attribute.String("result", "compare_failed"))
	txnError         = metrics.RecordOptions(attribute.String("result", "error"))
)

// measureTxns times the transactions of an etcd client (a unary client interceptor: every
// Txn of the client, whoever commits it).
func measureTxns(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if method != txnMethod {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	result := txnSucceeded
	switch resp, _ := reply.(*pb.TxnResponse); {
	case err != nil:
		result = txnError
	case resp != nil && !resp.Succeeded:
		result = txnCompareFailed
	}
	txnDuration.Record(ctx, time.Since(start).Seconds(), result...)
	return err
}
