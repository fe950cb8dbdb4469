package store

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/openhavip/havip/platform/etcdtest"
)

// testReader reads the package's instruments. They go to the first provider installed, so it is
// installed once (a test run with -count 2 runs twice); no other test of this package reads
// metrics.
var testReader = sync.OnceValue(func() *sdkmetric.ManualReader {
	reader := sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	return reader
})

// gauges returns, of one collection, the subnet gauges' values by name and subnet ID, and the
// collection's error.
func gauges(t *testing.T, r *sdkmetric.ManualReader) (map[string]map[string]int64, error) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	err := r.Collect(context.Background(), &rm)
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			g, ok := m.Data.(metricdata.Gauge[int64])
			if !ok {
				continue
			}
			for _, dp := range g.DataPoints {
				id, _ := dp.Attributes.Value(attribute.Key("subnet_id"))
				if out[m.Name] == nil {
					out[m.Name] = map[string]int64{}
				}
				out[m.Name][id.AsString()] = dp.Value
			}
		}
	}
	return out, err
}

// TestSubnetGaugesWithoutEtcd: a scrape reports each subnet's size and free addresses; when
// etcd cannot count the free ones, the scrape still has the sizes (and fails for the free
// counts alone) rather than losing every subnet series.
func TestSubnetGaugesWithoutEtcd(t *testing.T) {
	reader := testReader()
	_, cli := etcdtest.Fresh(t)
	s := New(cli, etcdtest.Quiet)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	vpc := etcdtest.Must[Vpc](t)(s.CreateVpc(ctx, "acct", "v", netip.MustParsePrefix("10.0.0.0/16")))
	sn := etcdtest.Must[Subnet](t)(s.CreateSubnet(ctx, "acct", vpc.ID, "s", netip.MustParsePrefix("10.0.1.0/24"), "default"))
	const total, free, size = "havip.ipam.subnet.addresses", "havip.ipam.subnet.free_addresses", 253
	if err := s.Sync(ctx); err != nil { // the scrape reads the subnets' cache
		t.Fatal(err)
	}
	got, err := gauges(t, reader)
	if err != nil || got[total][sn.ID] != size || got[free][sn.ID] != size {
		t.Fatalf("with etcd: %v, %v; want %d of %d free", got, err, size, size)
	}
	// The subnet's pool was never read here: its free count needs etcd, which is gone.
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	got, err = gauges(t, reader)
	if err == nil || !strings.Contains(err.Error(), "subnet free addresses") || got[total][sn.ID] != size {
		t.Fatalf("without etcd: %v, %v; want the size %d and an error", got, err, size)
	}
	if v, ok := got[free][sn.ID]; ok {
		t.Fatalf("without etcd the free count is %d; want none", v)
	}
}
