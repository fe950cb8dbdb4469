package store

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/metrics"
)

var meter = metrics.Meter("github.com/openhavip/havip/services/ipam/store")

// The address counts of every subnet, one series per subnet (subnet_id, with its account):
// 10,000 subnets are 20,000 series per ipamd replica, which Prometheus holds easily; an
// operator with far more may drop them at scrape time (metric_relabel_configs) and keep the
// counts DescribeSubnets gives. Every replica reports every subnet: aggregate with max by
// (subnet_id). A replica counts the subnets it allocates in itself, and asks etcd for the others'
// counts at each scrape (one transaction per hundred subnets, counted from etcd's index).
var (
	freeGauge = metrics.Must(meter.Int64ObservableGauge("havip.ipam.subnet.free_addresses", metric.WithUnit("{address}"),
		metric.WithDescription("Free private addresses of each subnet, as this replica sees them (usable addresses minus those allocated or reserved).")))
	totalGauge = metrics.Must(meter.Int64ObservableGauge("havip.ipam.subnet.addresses", metric.WithUnit("{address}"),
		metric.WithDescription("Usable private addresses of each subnet (its CIDR less network, gateway and broadcast).")))
)

// observeSubnets reports the subnets' address counts at each scrape until ctx ends.
func (s *Store) observeSubnets(ctx context.Context) error {
	reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		var subnets []Subnet
		s.subnets.View(func(m map[string]*kvcache.Item[Subnet]) {
			subnets = make([]Subnet, 0, len(m))
			for _, it := range m {
				subnets = append(subnets, it.Value)
			}
		})
		attrs := make([]metric.ObserveOption, len(subnets))
		for i, sn := range subnets {
			attrs[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("subnet_id", sn.ID), attribute.String("account", sn.Account)))
			o.ObserveInt64(totalGauge, int64(sn.Usable()), attrs[i])
		}
		// The free counts may need etcd; when it fails the scrape still has each subnet's size
		// (and every other series of the process), and no free count rather than a wrong one.
		usages, err := s.usages(ctx, subnets)
		if err != nil {
			return fmt.Errorf("subnet free addresses: %w", err)
		}
		for i, u := range usages {
			o.ObserveInt64(freeGauge, int64(u.Available), attrs[i])
		}
		return nil
	}, freeGauge, totalGauge)
	if err != nil {
		return fmt.Errorf("subnet gauges: %w", err)
	}
	context.AfterFunc(ctx, func() { _ = reg.Unregister() })
	return nil
}
