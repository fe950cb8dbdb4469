package havipcache

import (
	"math"
	"net/netip"
	"time"
	"unique"

	"github.com/openhavip/havip/platform/records"
)

// Record is the cached form of a records.HaVip, smaller than it (72 bytes against 176, without
// the strings): the ID is the key's tail; the account, VPC and subnet, shared by many HAVIPs,
// are one interned handle; switch-range entries are interned handles; the VIP, when IPv4, and
// the creation time, when in UTC and within int64 nanoseconds, are packed; the rare rest (client
// token, other VIPs and times, an ID unlike the key's) is in ext.
type Record struct {
	name    string
	assoc   []Assoc
	loc     unique.Handle[placement]
	ext     *extra
	created int64 // UnixNano, UTC; noTime for the zero time
	vip4    [4]byte
	check   bool
}

// placement is where a HAVIP lives.
type placement struct{ account, vpc, subnet string }

// Assoc is a switch-range entry.
type Assoc struct{ id, typ unique.Handle[string] }

// InstanceID is the entry's instance (CVM or ENI) ID.
func (a Assoc) InstanceID() string { return a.id.Value() }

// Type is the entry's instance type.
func (a Assoc) Type() string { return a.typ.Value() }

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

// Decode is the HAVIP cache's decode function.
func Decode(key string, val []byte) (Record, error) {
	h, err := records.DecodeHaVip(val)
	if err != nil {
		return Record{}, err
	}
	return Compact(key, h), nil
}

// Compact is the cached form of h, stored at key.
func Compact(key string, h records.HaVip) Record {
	r := Record{name: h.Name, loc: unique.Make(placement{h.Account, h.VpcID, h.SubnetID}), check: h.CheckAssociate}
	if len(h.Associations) > 0 {
		r.assoc = make([]Assoc, len(h.Associations))
		for i, a := range h.Associations {
			r.assoc[i] = Assoc{unique.Make(a.InstanceID), unique.Make(a.Type)}
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
	if h.ID != IDOf(key) {
		ext().id = h.ID
	}
	return r
}

// IDOf is the HAVIP ID a cache key names.
func IDOf(key string) string { return key[min(len(records.HaVips), len(key)):] }

// ID is the HAVIP's ID (stored at key).
func (r *Record) ID(key string) string {
	if r.ext != nil && r.ext.id != "" {
		return r.ext.id
	}
	return IDOf(key)
}

// Name is the HAVIP's name.
func (r *Record) Name() string { return r.name }

// Account is the tenant the HAVIP belongs to.
func (r *Record) Account() string { return r.loc.Value().account }

// VpcID is the HAVIP's VPC.
func (r *Record) VpcID() string { return r.loc.Value().vpc }

// SubnetID is the HAVIP's subnet.
func (r *Record) SubnetID() string { return r.loc.Value().subnet }

// CheckAssociate is whether only the switch range may hold the VIP.
func (r *Record) CheckAssociate() bool { return r.check }

// Associations is the switch range; the caller must not change it.
func (r *Record) Associations() []Assoc { return r.assoc }

// VIP is the HAVIP's VIP.
func (r *Record) VIP() netip.Addr {
	if r.ext != nil && r.ext.ownVIP {
		return r.ext.vip
	}
	return netip.AddrFrom4(r.vip4)
}

// Token is the client token that created the HAVIP, if any.
func (r *Record) Token() string {
	if r.ext == nil {
		return ""
	}
	return r.ext.token
}

// HaVip is the record as stored, at key.
func (r *Record) HaVip(key string) records.HaVip {
	loc := r.loc.Value()
	h := records.HaVip{
		ID: r.ID(key), Account: loc.account, Name: r.name, VpcID: loc.vpc, SubnetID: loc.subnet,
		VIP: r.VIP(), CheckAssociate: r.check, ClientToken: r.Token(),
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
