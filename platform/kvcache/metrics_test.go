package kvcache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/metrics/metricstest"
)

// TestCacheMetrics: a started cache reports its size (havip_kvcache_items) and each wait for a
// revision (havip_kvcache_sync_wait_seconds) under its prefix, and its size no longer once its
// context ends.
func TestCacheMetrics(t *testing.T) {
	addr := metricstest.Start(t)
	_, cli := etcdtest.Fresh(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := fmt.Sprintf("/metrics-test-%d/", time.Now().UnixNano()) // its own series, whatever ran before in this process
	for i := range 3 {
		if _, err := cli.Put(ctx, fmt.Sprintf("%s%d", prefix, i), "{}"); err != nil {
			t.Fatal(err)
		}
	}
	c := kvcache.New(cli, kvcache.NewRevisions(cli), prefix, kvcache.DecodeJSON[struct{}], etcdtest.Quiet)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, prefix+"3", "{}"); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	fams := metricstest.Families(t, metricstest.Get(t, addr))
	labels := map[string]string{"prefix": prefix}
	if n, ok := metricstest.Value(fams, "havip_kvcache_items", labels); !ok || n != 4 {
		t.Errorf("havip_kvcache_items: %v (found %v), want 4\n%s", n, ok, metricstest.Describe(fams, "havip_kvcache_items"))
	}
	if n, ok := metricstest.Value(fams, "havip_kvcache_sync_wait_seconds", labels); !ok || n != 1 {
		t.Errorf("havip_kvcache_sync_wait_seconds count: %v (found %v), want 1", n, ok)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for { // the cache is dropped from the gauge just after its context ends
		if _, ok := metricstest.Value(metricstest.Families(t, metricstest.Get(t, addr)), "havip_kvcache_items", labels); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a stopped cache is still reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
