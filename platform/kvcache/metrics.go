package kvcache

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/openhavip/havip/platform/metrics"
)

var meter = metrics.Meter("github.com/openhavip/havip/platform/kvcache")

// syncWait is havip_kvcache_sync_wait_seconds{prefix}: how long a read waited for a cache to
// have applied a revision (WaitRevision, and so Sync).
var syncWait = metrics.Must(meter.Float64Histogram("havip.kvcache.sync.wait", metric.WithUnit("s"),
	metric.WithExplicitBucketBoundaries(metrics.FastBuckets...),
	metric.WithDescription("Time reads waited for a cache to catch up with etcd (Sync, WaitRevision), by the cache's key prefix.")))

// itemsGauge is havip_kvcache_items{prefix}: the keys a cache holds. Caches of one prefix in
// one process (the suite's services) follow the same keys: the largest is reported.
var itemsGauge = metrics.Must(meter.Int64ObservableGauge("havip.kvcache.items", metric.WithUnit("{item}"),
	metric.WithDescription("Keys held by the process's watch-fed caches of etcd, by key prefix (the largest cache of a prefix).")))

// sizer is a started cache, as the items gauge reads it.
type sizer interface {
	keyPrefix() string
	size() int
}

// live holds the started caches until their context ends.
var live sync.Map // sizer → struct{}

func init() {
	_ = metrics.Must(meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		sizes := map[string]int{}
		live.Range(func(k, _ any) bool {
			s := k.(sizer)
			sizes[s.keyPrefix()] = max(sizes[s.keyPrefix()], s.size())
			return true
		})
		for p, n := range sizes {
			o.ObserveInt64(itemsGauge, int64(n), metric.WithAttributes(attribute.String("prefix", p)))
		}
		return nil
	}, itemsGauge))
}

// followSize lists the cache for the items gauge until ctx ends.
func followSize(ctx context.Context, s sizer) {
	live.Store(s, struct{}{})
	context.AfterFunc(ctx, func() { live.Delete(s) })
}

func (c *Cache[T]) keyPrefix() string { return c.prefix }

func (c *Cache[T]) size() int { return c.Len() }

// Len is the number of keys the cache holds.
func (c *Cache[T]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.items)
}
