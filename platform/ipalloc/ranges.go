package ipalloc

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Range is an inclusive range of IPv4 addresses.
type Range struct {
	First, Last netip.Addr
}

// CIDRHosts is the range of a CIDR without its network and broadcast addresses, and also
// without its first skipFirst host addresses (a subnet's gateway is its first host).
func CIDRHosts(p netip.Prefix, skipFirst int) (Range, error) {
	p = p.Masked()
	if !p.Addr().Is4() {
		return Range{}, fmt.Errorf("%s is not IPv4", p)
	}
	if p.Bits() > 30 {
		return Range{}, fmt.Errorf("%s has no host addresses", p)
	}
	if skipFirst < 0 {
		return Range{}, fmt.Errorf("cannot skip %d addresses of %s", skipFirst, p)
	}
	// In 64 bits: neither the end of a /0 nor a skip past 255.255.255.255 wraps around.
	base := uint64(U32(p.Addr()))
	size := uint64(1) << (32 - p.Bits())
	first, last := base+1+uint64(skipFirst), base+size-2
	if first > last {
		return Range{}, fmt.Errorf("%s has no usable addresses", p)
	}
	return Range{First: Addr(uint32(first)), Last: Addr(uint32(last))}, nil
}

// U32 is the IPv4 address as a number.
func U32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// Addr is the IPv4 address of a number.
func Addr(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

// layout maps a pool's ranges onto offsets 0..size-1.
type layout []Range

func (l layout) size() int {
	n := 0
	for _, r := range l {
		n += int(U32(r.Last)-U32(r.First)) + 1
	}
	return n
}

// offset is the position of a in the pool, or -1 when a is outside every range.
func (l layout) offset(a netip.Addr) int {
	if !a.Is4() {
		return -1
	}
	u, base := U32(a), 0
	for _, r := range l {
		f, t := U32(r.First), U32(r.Last)
		if u >= f && u <= t {
			return base + int(u-f)
		}
		base += int(t-f) + 1
	}
	return -1
}

// addr is the address at position off.
func (l layout) addr(off int) netip.Addr {
	for _, r := range l {
		n := int(U32(r.Last)-U32(r.First)) + 1
		if off < n {
			return Addr(U32(r.First) + uint32(off))
		}
		off -= n
	}
	return netip.Addr{}
}
