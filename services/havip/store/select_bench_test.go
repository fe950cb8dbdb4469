package store

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/records"
)

// BenchmarkSelect measures the index alone (no etcd, no gRPC) over one account of 1,000 to
// 1,000,000 HAVIPs (16 subnets, two switch-range CVMs of 2,000 each), loaded in creation order as
// the cache's load tells them: the time of a selection under the cache's lock, which should not
// grow with the account.
//
//	cd services/havip && go test ./store -run '^$' -bench Select -benchtime 20000x
func BenchmarkSelect(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000, 1000000} {
		ix, items := newIndex(), map[string]*entry{}
		for i := range n {
			key := records.HaVipKey(fmt.Sprintf("havip-%08d", i))
			h := records.HaVip{
				ID: havipcache.IDOf(key), Account: "acct", Name: fmt.Sprintf("hv-%d", i), VpcID: "vpc-1", SubnetID: fmt.Sprintf("subnet-%02d", i%16),
				VIP: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), CheckAssociate: i%10 != 0,
				Associations: []records.Association{{InstanceID: fmt.Sprintf("ins-%d", i%2000), Type: "CVM"}, {InstanceID: fmt.Sprintf("ins-%d", (i+1)%2000), Type: "CVM"}},
				Created:      time.Unix(int64(i), 0).UTC(),
			}
			e := &entry{Key: key, Value: havipcache.Compact(key, h), CreateRevision: int64(i + 1), ModRevision: int64(i + 1)}
			items[key] = e
			ix.hook(nil, e, e.ModRevision)
		}
		a := ix.accounts["acct"]
		sel := func(b *testing.B, offset int, filters ...Filter) {
			b.Helper()
			var page []*entry
			var total int
			for range b.N {
				srcs := make([]source, len(filters))
				for i, f := range filters {
					srcs[i] = sourceOf(a, "acct", items, f, nil, nil)
				}
				page, total = a.selectPage(srcs, offset, 100)
			}
			if total == 0 || len(page) != min(100, total-offset) {
				b.Fatalf("%v at %d: %d HAVIPs of %d", filters, offset, len(page), total)
			}
		}
		one := func(k, v string) Filter { return Filter{Key: k, Values: []string{v}} }
		mid := fmt.Sprint(n / 2)
		b.Run(fmt.Sprintf("%d/by-id", n), func(b *testing.B) { sel(b, 0, one("havip-id", fmt.Sprintf("havip-%08d", n/2))) })
		b.Run(fmt.Sprintf("%d/vip", n), func(b *testing.B) {
			sel(b, 0, one("vip", netip.AddrFrom4([4]byte{10, byte(n / 2 >> 16), byte(n / 2 >> 8), byte(n / 2)}).String()))
		})
		b.Run(fmt.Sprintf("%d/name", n), func(b *testing.B) { sel(b, 0, one("havip-name", "hv-"+mid)) })
		b.Run(fmt.Sprintf("%d/page@0", n), func(b *testing.B) { sel(b, 0) })
		b.Run(fmt.Sprintf("%d/page@middle", n), func(b *testing.B) { sel(b, n/2) })
		b.Run(fmt.Sprintf("%d/page@end", n), func(b *testing.B) { sel(b, n-100) })
		b.Run(fmt.Sprintf("%d/subnet@middle", n), func(b *testing.B) { sel(b, n/32, one("subnet-id", "subnet-03")) })
		b.Run(fmt.Sprintf("%d/3-subnets@middle", n), func(b *testing.B) {
			sel(b, 3*n/32, Filter{Key: "subnet-id", Values: []string{"subnet-03", "subnet-07", "subnet-11"}})
		})
		b.Run(fmt.Sprintf("%d/instance@0", n), func(b *testing.B) { sel(b, 0, one("havip-association.instance-id", "ins-7")) })
		b.Run(fmt.Sprintf("%d/vpc+check@middle", n), func(b *testing.B) {
			// vpc-id passes every HAVIP, so check-associate alone selects.
			sel(b, n/2, one("vpc-id", "vpc-1"), one("check-associate", "true"))
		})
	}
}
