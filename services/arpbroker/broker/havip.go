package broker

import (
	"net/netip"
	"unique"

	"github.com/openhavip/havip/platform/havipcache"
	"github.com/openhavip/havip/platform/records"
)

// vipRef is a VIP in its VPC: how a report finds its HAVIP.
type vipRef struct {
	vpc unique.Handle[string]
	vip netip.Addr
}

// refOf is where reports find the HAVIP r.
func refOf(r *havipcache.Record) vipRef { return vipRef{unique.Make(r.VpcID()), r.VIP()} }

// record is the cached HAVIP as the rules read it, its ID the key's (under which the broker
// reads and writes its owner).
func record(it *havipcache.Item) records.HaVip {
	h := it.Value.HaVip(it.Key)
	h.ID = havipcache.IDOf(it.Key)
	return h
}
