package store

import (
	"math"
	"net/netip"
	"time"
	"unique"

	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
)

// entry is a cached HAVIP.
type entry = kvcache.Item[record]

// record is the cached form of a records.HaVip, smaller than it (72 bytes against 176, without
// the strings): the ID is the key's tail; the account, VPC and subnet, shared by many HAVIPs,
// are one interned handle; switch-range entries are interned handles; the VIP, when IPv4, and
// the creation time, when in UTC and within int64 nanoseconds, are packed; the rare rest (client
// token, other VIPs and times, an ID unlike the key's) is in ext.
type record struct {
	name    string
	assoc   []assocRef
	loc     unique.Handle[placement]
	ext     *extra
	created int64 // UnixNano, UTC; noTime for the zero time
	vip4    [4]byte
	check   bool
}

// placement is where a HAVIP lives.
type placement struct{ account, vpc, subnet string }

// assocRef is a switch-range entry.
type assocRef struct{ id, typ unique.Handle[string] }

// extra holds what most HAVIPs do not have.
type extra struct {
	token   string
	id      string     // when it is not the key's tail
	vip     netip.Addr // when it is not IPv4
	created time.Time  // when not in UTC or out of int64 nanoseconds
	ownVIP  bool
	ownTime bool
}

const noTime = math.MinInt64

var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

// decodeRecord is the HAVIP cache's decode function.
func decodeRecord(key string, val []byte) (record, error) {
	h, err := records.DecodeHaVip(val)
	if err != nil {
		return record{}, err
	}
	return compact(key, h), nil
}

// compact is the cached form of h, stored at key.
func compact(key string, h records.HaVip) record {
	r := record{name: h.Name, loc: unique.Make(placement{h.Account, h.VpcID, h.SubnetID}), check: h.CheckAssociate}
	if len(h.Associations) > 0 {
		r.assoc = make([]assocRef, len(h.Associations))
		for i, a := range h.Associations {
			r.assoc[i] = assocRef{unique.Make(a.InstanceID), unique.Make(a.Type)}
		}
	}
	ext := func() *extra {
		if r.ext == nil {
			r.ext = &extra{}
		}
		return r.ext
	}
	if h.VIP.Is4() {
		r.vip4 = h.VIP.As4()
	} else {
		ext().vip, r.ext.ownVIP = h.VIP, true
	}
	switch c := h.Created; {
	case c.IsZero():
		r.created = noTime
	case c.Location() == time.UTC && c.After(minTime) && !c.After(maxTime):
		r.created = c.UnixNano()
	default:
		ext().created, r.ext.ownTime = c, true
	}
	if h.ClientToken != "" {
		ext().token = h.ClientToken
	}
	if h.ID != idOf(key) {
		ext().id = h.ID
	}
	return r
}

// idOf is the HAVIP ID a cache key names.
func idOf(key string) string { return key[min(len(records.HaVips), len(key)):] }

// id is the HAVIP's ID (stored at key).
func (r *record) id(key string) string {
	if r.ext != nil && r.ext.id != "" {
		return r.ext.id
	}
	return idOf(key)
}

func (r *record) account() string { return r.loc.Value().account }

// vip is the HAVIP's VIP.
func (r *record) vip() netip.Addr {
	if r.ext != nil && r.ext.ownVIP {
		return r.ext.vip
	}
	return netip.AddrFrom4(r.vip4)
}

func (r *record) token() string {
	if r.ext == nil {
		return ""
	}
	return r.ext.token
}

// haVip is the record as stored, at key.
func (r *record) haVip(key string) records.HaVip {
	loc := r.loc.Value()
	h := records.HaVip{
		ID: r.id(key), Account: loc.account, Name: r.name, VpcID: loc.vpc, SubnetID: loc.subnet,
		VIP: r.vip(), CheckAssociate: r.check, ClientToken: r.token(),
	}
	if r.created != noTime {
		h.Created = time.Unix(0, r.created).UTC()
	}
	if r.ext != nil && r.ext.ownTime {
		h.Created = r.ext.created
	}
	if len(r.assoc) > 0 {
		h.Associations = make([]records.Association, len(r.assoc))
		for i, a := range r.assoc {
			h.Associations[i] = records.Association{InstanceID: a.id.Value(), Type: a.typ.Value()}
		}
	}
	return h
}
