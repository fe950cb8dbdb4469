package ipalloc

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rng is the Range first-last, for tables.
func rng(first, last string) Range {
	return Range{First: netip.MustParseAddr(first), Last: netip.MustParseAddr(last)}
}

// TestCIDRHosts: the usable range of a block leaves out its network address, its broadcast
// address and the first skipFirst hosts; blocks with nothing left, non-IPv4 blocks and skips
// past the end of the address space are refused.
func TestCIDRHosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prefix  string
		skip    int
		want    Range
		wantErr bool
	}{
		{name: "/24 whole", prefix: "10.0.1.0/24", skip: 0, want: rng("10.0.1.1", "10.0.1.254")},
		{name: "/24 without gateway", prefix: "10.0.1.0/24", skip: 1, want: rng("10.0.1.2", "10.0.1.254")},
		{name: "/16 without gateway", prefix: "172.16.0.0/16", skip: 1, want: rng("172.16.0.2", "172.16.255.254")},
		{name: "/29 without gateway", prefix: "192.168.3.8/29", skip: 1, want: rng("192.168.3.10", "192.168.3.14")},
		{name: "host bits are masked", prefix: "10.0.1.77/24", skip: 1, want: rng("10.0.1.2", "10.0.1.254")},
		{name: "/30 whole", prefix: "10.0.0.4/30", skip: 0, want: rng("10.0.0.5", "10.0.0.6")},
		{name: "/30 one usable left", prefix: "10.0.0.4/30", skip: 1, want: rng("10.0.0.6", "10.0.0.6")},
		{name: "/30 skip takes every host", prefix: "10.0.0.4/30", skip: 2, wantErr: true},
		{name: "/31 has no hosts", prefix: "10.0.0.4/31", skip: 0, wantErr: true},
		{name: "/32 has no hosts", prefix: "10.0.0.4/32", skip: 0, wantErr: true},
		{name: "/0 is the whole space", prefix: "0.0.0.0/0", skip: 0, want: rng("0.0.0.1", "255.255.255.254")},
		{name: "/1 upper half", prefix: "128.0.0.0/1", skip: 1, want: rng("128.0.0.2", "255.255.255.254")},
		{name: "top /24", prefix: "255.255.255.0/24", skip: 0, want: rng("255.255.255.1", "255.255.255.254")},
		{name: "top /24 last host", prefix: "255.255.255.0/24", skip: 253, want: rng("255.255.255.254", "255.255.255.254")},
		{name: "top /24 skip every host", prefix: "255.255.255.0/24", skip: 254, wantErr: true},
		// The first usable address would pass 255.255.255.255: it must not wrap to 0.0.0.x.
		{name: "top /24 skip past the end of the space", prefix: "255.255.255.0/24", skip: 300, wantErr: true},
		{name: "top /30 skip past the end of the space", prefix: "255.255.255.252/30", skip: 10, wantErr: true},
		{name: "skip that truncates to 0 in 32 bits", prefix: "10.0.0.0/24", skip: 1 << 32, wantErr: true},
		{name: "negative skip", prefix: "10.0.0.0/24", skip: -1, wantErr: true},
		{name: "IPv6", prefix: "fd00::/120", skip: 0, wantErr: true},
		{name: "IPv4-mapped IPv6", prefix: "::ffff:10.0.0.0/120", skip: 0, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := CIDRHosts(netip.MustParsePrefix(tc.prefix), tc.skip)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("CIDRHosts(%s, %d) = %v, want an error", tc.prefix, tc.skip, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("CIDRHosts(%s, %d): %v", tc.prefix, tc.skip, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("CIDRHosts(%s, %d) (-want +got):\n%s", tc.prefix, tc.skip, diff)
			}
		})
	}
}

// TestSubnetPools: for every subnet size a VPC accepts (/16 to /29), the pool of a subnet
// (CIDRHosts skipping the gateway) holds 2^(32-bits)-3 addresses, from the second host to the
// one before the broadcast address; the network, gateway and broadcast addresses are outside it.
func TestSubnetPools(t *testing.T) {
	t.Parallel()
	for bits := 16; bits <= 29; bits++ {
		t.Run(fmt.Sprintf("/%d", bits), func(t *testing.T) {
			t.Parallel()
			p := netip.PrefixFrom(netip.MustParseAddr("10.64.0.0"), bits)
			r, err := CIDRHosts(p, 1)
			if err != nil {
				t.Fatal(err)
			}
			network := U32(p.Addr())
			broadcast := network + 1<<(32-bits) - 1
			l := layout{r}
			if got, want := l.size(), 1<<(32-bits)-3; got != want {
				t.Errorf("size %d, want %d", got, want)
			}
			offsets := []struct {
				name string
				addr uint32
				want int
			}{
				{name: "network", addr: network, want: -1},
				{name: "gateway", addr: network + 1, want: -1},
				{name: "first usable", addr: network + 2, want: 0},
				{name: "last usable", addr: broadcast - 1, want: 1<<(32-bits) - 4},
				{name: "broadcast", addr: broadcast, want: -1},
				{name: "next block", addr: broadcast + 1, want: -1},
			}
			for _, o := range offsets {
				if got := l.offset(Addr(o.addr)); got != o.want {
					t.Errorf("%s %s: offset %d, want %d", o.name, Addr(o.addr), got, o.want)
				}
			}
		})
	}
}

// TestU32: an address and its number convert both ways, at both ends of the space and between.
func TestU32(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		addr string
		want uint32
	}{
		{name: "zero", addr: "0.0.0.0", want: 0},
		{name: "last octet", addr: "0.0.0.1", want: 1},
		{name: "first octet is the high byte", addr: "10.0.0.1", want: 0x0a000001},
		{name: "mixed", addr: "192.168.1.250", want: 0xc0a801fa},
		{name: "broadcast", addr: "255.255.255.255", want: 0xffffffff},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := netip.MustParseAddr(tc.addr)
			if got := U32(a); got != tc.want {
				t.Errorf("U32(%s) = %#x, want %#x", a, got, tc.want)
			}
			if got := Addr(tc.want); got != a {
				t.Errorf("Addr(%#x) = %s, want %s", tc.want, got, a)
			}
		})
	}
}

// TestLayout: a pool of several ranges (one crossing a /24 boundary, one of a single address,
// listed out of address order) numbers its addresses 0..size-1 in the order of its ranges;
// offset and addr are inverse, and addresses outside every range have no offset.
func TestLayout(t *testing.T) {
	t.Parallel()
	l := layout{
		rng("10.0.0.1", "10.0.0.3"),
		rng("192.168.1.250", "192.168.2.5"),
		rng("1.2.3.4", "1.2.3.4"),
	}
	if got, want := l.size(), 3+12+1; got != want {
		t.Fatalf("size %d, want %d", got, want)
	}
	var got []string
	for off := range l.size() {
		a := l.addr(off)
		got = append(got, a.String())
		if back := l.offset(a); back != off {
			t.Errorf("offset(addr(%d) = %s) = %d", off, a, back)
		}
	}
	want := []string{
		"10.0.0.1", "10.0.0.2", "10.0.0.3",
		"192.168.1.250", "192.168.1.251", "192.168.1.252", "192.168.1.253", "192.168.1.254", "192.168.1.255",
		"192.168.2.0", "192.168.2.1", "192.168.2.2", "192.168.2.3", "192.168.2.4", "192.168.2.5",
		"1.2.3.4",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("addresses by offset (-want +got):\n%s", diff)
	}
	if a := l.addr(l.size()); a.IsValid() {
		t.Errorf("addr(size) = %s, want the zero Addr", a)
	}
	outside := []struct {
		name string
		addr netip.Addr
	}{
		{name: "before the first range", addr: netip.MustParseAddr("10.0.0.0")},
		{name: "after the first range", addr: netip.MustParseAddr("10.0.0.4")},
		{name: "before the second range", addr: netip.MustParseAddr("192.168.1.249")},
		{name: "after the second range", addr: netip.MustParseAddr("192.168.2.6")},
		{name: "next to the single address", addr: netip.MustParseAddr("1.2.3.5")},
		{name: "IPv6", addr: netip.MustParseAddr("fd00::1")},
		{name: "IPv4-mapped IPv6 of a pool address", addr: netip.MustParseAddr("::ffff:10.0.0.1")},
		{name: "zero Addr", addr: netip.Addr{}},
	}
	for _, o := range outside {
		if off := l.offset(o.addr); off != -1 {
			t.Errorf("%s: offset(%s) = %d, want -1", o.name, o.addr, off)
		}
	}
}

// TestLayoutWholeSpace: a range of all 2^32 addresses has 2^32 offsets; the last one is
// 255.255.255.255 (no 32-bit overflow on the way).
func TestLayoutWholeSpace(t *testing.T) {
	t.Parallel()
	l := layout{rng("0.0.0.0", "255.255.255.255")}
	if got, want := l.size(), 1<<32; got != want {
		t.Fatalf("size %d, want %d", got, want)
	}
	last := netip.MustParseAddr("255.255.255.255")
	if got := l.offset(last); got != 1<<32-1 {
		t.Errorf("offset(%s) = %d, want %d", last, got, 1<<32-1)
	}
	if got := l.addr(1<<32 - 1); got != last {
		t.Errorf("addr(2^32-1) = %s, want %s", got, last)
	}
}
