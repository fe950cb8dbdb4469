package havipcache_test

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
)

// TestRecordKeepsTheOddOnes: what the packed record cannot hold (an ID unlike the key's, a VIP
// not IPv4, a time not in UTC or beyond int64 nanoseconds) reads back as written.
func TestRecordKeepsTheOddOnes(t *testing.T) {
	for _, h := range []records.HaVip{
		{ID: "havip-other", VIP: netip.MustParseAddr("10.0.0.1"), Created: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)},
		{ID: "havip-1", VIP: netip.MustParseAddr("2001:db8::1"), Created: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "havip-1", Created: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), ClientToken: "t"},
		{ID: "havip-1", Created: time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600))},
	} {
		val, _ := json.Marshal(h)
		r, err := havipcache.Decode(records.HaVipKey("havip-1"), val)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := kvcache.DecodeJSON[records.HaVip]("", val)
		if got := r.HaVip(records.HaVipKey("havip-1")); !reflect.DeepEqual(got, want) {
			t.Errorf("%s reads back as %+v", val, got)
		}
	}
}
