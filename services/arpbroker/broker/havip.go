package broker

import (
	"net/netip"
	"strings"
	"unique"

	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
)

// havip is the broker's cached HAVIP: only what its rules read (no name, client token or
// creation time), the strings many HAVIPs share interned, the ID being the key's tail. It holds
// 64 bytes besides the key, where a records.HaVip holds 176 and its strings.
type havip struct {
	loc   unique.Handle[placement]
	vip   netip.Addr
	assoc []unique.Handle[records.Association]
	check bool
}

// placement is where a HAVIP lives.
type placement struct{ account, vpc, subnet string }

// vipRef is a VIP in its VPC: how a report finds its HAVIP.
type vipRef struct {
	vpc unique.Handle[string]
	vip netip.Addr
}

// decodeHaVip is the HAVIP cache's decode function.
func decodeHaVip(key string, val []byte) (havip, error) {
	h, err := records.DecodeHaVip(val)
	if err != nil {
		return havip{}, err
	}
	out := havip{loc: unique.Make(placement{h.Account, h.VpcID, h.SubnetID}), vip: h.VIP, check: h.CheckAssociate}
	if len(h.Associations) > 0 {
		out.assoc = make([]unique.Handle[records.Association], len(h.Associations))
		for i, a := range h.Associations {
			out.assoc[i] = unique.Make(a)
		}
	}
	return out, nil
}

// havipID is the ID of the HAVIP stored at key.
func havipID(key string) string { return strings.TrimPrefix(key, records.HaVips) }

// ref is where reports find the HAVIP.
func (h *havip) ref() vipRef { return vipRef{unique.Make(h.loc.Value().vpc), h.vip} }

// record is the cached HAVIP at key as the rules read it.
func record(it *kvcache.Item[havip]) records.HaVip {
	loc := it.Value.loc.Value()
	h := records.HaVip{ID: havipID(it.Key), Account: loc.account, VpcID: loc.vpc, SubnetID: loc.subnet, VIP: it.Value.vip, CheckAssociate: it.Value.check}
	if len(it.Value.assoc) > 0 {
		h.Associations = make([]records.Association, len(it.Value.assoc))
		for i, a := range it.Value.assoc {
			h.Associations[i] = a.Value()
		}
	}
	return h
}
