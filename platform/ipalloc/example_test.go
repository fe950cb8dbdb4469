package ipalloc_test

import (
	"fmt"
	"net/netip"

	"github.com/openhavip/havip/platform/ipalloc"
)

// A subnet's pool: its hosts without the gateway (the first host), and the etcd key an
// address of it is allocated under.
func ExampleCIDRHosts() {
	subnet := netip.MustParsePrefix("10.0.1.0/24")
	r, err := ipalloc.CIDRHosts(subnet, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("usable:", r.First, "-", r.Last)
	fmt.Println("addresses:", ipalloc.U32(r.Last)-ipalloc.U32(r.First)+1)
	fmt.Println("key:", ipalloc.KeyAt("/havip/ipam/ip/", "subnet-0a1b2c3d", r.First.String()))

	_, err = ipalloc.CIDRHosts(netip.MustParsePrefix("10.0.1.0/31"), 0)
	fmt.Println(err)
	// Output:
	// usable: 10.0.1.2 - 10.0.1.254
	// addresses: 253
	// key: /havip/ipam/ip/subnet-0a1b2c3d/10.0.1.2
	// 10.0.1.0/31 has no host addresses
}

// Addresses and numbers convert both ways, for arithmetic on ranges.
func ExampleU32() {
	a := netip.MustParseAddr("192.168.1.255")
	fmt.Printf("%#x\n", ipalloc.U32(a))
	fmt.Println(ipalloc.Addr(ipalloc.U32(a) + 1))
	// Output:
	// 0xc0a801ff
	// 192.168.2.0
}
