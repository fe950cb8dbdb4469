package records

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// A HAVIP is stored in protocol-buffer wire format, as this message (decoding it needs no
// reflection and a sixth of the time JSON takes, which a cold cache of a million HAVIPs pays in
// full):
//
//	message HaVip {
//	  string id = 1;
//	  string account = 2;
//	  string name = 3;
//	  string vpc_id = 4;
//	  string subnet_id = 5;
//	  bytes vip = 6;                 // 4 or 16 bytes
//	  bool check_associate = 7;
//	  repeated Association associations = 8;
//	  string client_token = 9;
//	  int64 created_seconds = 10;    // Unix time; both absent: the zero time
//	  int32 created_nanos = 11;
//	}
//	message Association { string instance_id = 1; string type = 2; }
//
// Records written by earlier versions are JSON: DecodeHaVip reads both (a JSON record starts
// with '{', which no record of this message does: it would be field 15 as a group).
const (
	hvID, hvAccount, hvName, hvVpc, hvSubnet, hvVIP, hvCheck, hvAssoc, hvToken, hvSec, hvNanos protowire.Number = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
	asInstance, asType                                                                         protowire.Number = 1, 2
)

// EncodeHaVip is the stored form of h.
func EncodeHaVip(h HaVip) string {
	b := make([]byte, 0, 128)
	str := func(n protowire.Number, s string) {
		if s != "" {
			b = protowire.AppendTag(b, n, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	}
	str(hvID, h.ID)
	str(hvAccount, h.Account)
	str(hvName, h.Name)
	str(hvVpc, h.VpcID)
	str(hvSubnet, h.SubnetID)
	if h.VIP.IsValid() {
		b = protowire.AppendTag(b, hvVIP, protowire.BytesType)
		b = protowire.AppendBytes(b, h.VIP.AsSlice())
	}
	if h.CheckAssociate {
		b = protowire.AppendTag(b, hvCheck, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	for _, a := range h.Associations {
		var m []byte
		if a.InstanceID != "" {
			m = protowire.AppendTag(m, asInstance, protowire.BytesType)
			m = protowire.AppendString(m, a.InstanceID)
		}
		if a.Type != "" {
			m = protowire.AppendTag(m, asType, protowire.BytesType)
			m = protowire.AppendString(m, a.Type)
		}
		b = protowire.AppendTag(b, hvAssoc, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	str(hvToken, h.ClientToken)
	if !h.Created.IsZero() {
		b = protowire.AppendTag(b, hvSec, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(h.Created.Unix()))
		if ns := h.Created.Nanosecond(); ns != 0 {
			b = protowire.AppendTag(b, hvNanos, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(ns))
		}
	}
	return string(b)
}

// DecodeHaVip reads a stored HAVIP: EncodeHaVip's form, or the JSON of earlier versions. Its
// creation time is in UTC (a JSON record's keeps its offset).
func DecodeHaVip(val []byte) (HaVip, error) {
	var h HaVip
	if len(val) > 0 && val[0] == '{' {
		err := json.Unmarshal(val, &h)
		return h, err
	}
	var sec, nanos int64
	var dated bool
	err := fields(val, func(n protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		if want, known := haVipWire[n]; known && typ != want {
			return fmt.Errorf("field %d of wire type %d, want %d", n, typ, want)
		}
		switch n {
		case hvID:
			h.ID = string(v)
		case hvAccount:
			h.Account = string(v)
		case hvName:
			h.Name = string(v)
		case hvVpc:
			h.VpcID = string(v)
		case hvSubnet:
			h.SubnetID = string(v)
		case hvVIP:
			a, ok := netip.AddrFromSlice(v)
			if !ok {
				return fmt.Errorf("vip of %d bytes", len(v))
			}
			h.VIP = a
		case hvCheck:
			h.CheckAssociate = x != 0
		case hvAssoc:
			var a Association
			if err := fields(v, func(n protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if n == asInstance || n == asType {
					if typ != protowire.BytesType {
						return fmt.Errorf("field %d of wire type %d, want %d", n, typ, protowire.BytesType)
					}
				}
				switch n {
				case asInstance:
					a.InstanceID = string(v)
				case asType:
					a.Type = string(v)
				}
				return nil
			}); err != nil {
				return fmt.Errorf("association: %w", err)
			}
			h.Associations = append(h.Associations, a)
		case hvToken:
			h.ClientToken = string(v)
		case hvSec:
			sec, dated = int64(x), true
		case hvNanos:
			nanos, dated = int64(x), true
		}
		return nil
	})
	if err != nil {
		return HaVip{}, fmt.Errorf("decode HAVIP: %w", err)
	}
	if dated {
		h.Created = time.Unix(sec, nanos).UTC()
	}
	return h, nil
}

// haVipWire is the wire type of each field of the HaVip message; fields it does not name (of
// later versions) are skipped.
var haVipWire = map[protowire.Number]protowire.Type{
	hvID: protowire.BytesType, hvAccount: protowire.BytesType, hvName: protowire.BytesType, hvVpc: protowire.BytesType,
	hvSubnet: protowire.BytesType, hvVIP: protowire.BytesType, hvCheck: protowire.VarintType, hvAssoc: protowire.BytesType,
	hvToken: protowire.BytesType, hvSec: protowire.VarintType, hvNanos: protowire.VarintType,
}

// DecodeHaVipAt is DecodeHaVip as a cache's decode function.
func DecodeHaVipAt(_ string, val []byte) (HaVip, error) { return DecodeHaVip(val) }

var errWire = errors.New("malformed protocol-buffer record")

// fields calls fn with each field of a protocol-buffer message and its wire type: a
// length-delimited field's bytes, or a varint's value (fixed-width fields are passed as their
// bits); other wire types are refused.
func fields(b []byte, fn func(n protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		n, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return errWire
		}
		b = b[k:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, k = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, k = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x32 uint32
			x32, k = protowire.ConsumeFixed32(b)
			x = uint64(x32)
		case protowire.Fixed64Type:
			x, k = protowire.ConsumeFixed64(b)
		default:
			return errWire
		}
		if k < 0 {
			return errWire
		}
		b = b[k:]
		if err := fn(n, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}
