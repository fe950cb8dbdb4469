// Package store keeps the IPAM inventory in etcd: VPCs, subnets, instances, ENIs and their addresses.
package store

import (
	"net/netip"
	"time"

	"github.com/openhavip/havip/platform/records"
)

// Root is the etcd prefix of everything IPAM stores.
const Root = records.Root + "ipam/"

// Key prefixes, one per record kind.
const (
	vpcPrefix        = Root + "vpc/"
	subnetPrefix     = records.Subnets
	vpcSubnetsPrefix = Root + "vpc-subnets/" // <vpc>/<subnet>: which subnets a VPC has
	instancePrefix   = records.Instances
	eniPrefix        = records.NetworkInterfaces
	macPrefix        = Root + "mac/" // <mac> → ENI ID: MACs are unique
	// AddressPrefix holds one key per allocated address: <subnet>/<ip>.
	AddressPrefix = records.Addresses
)

// VpcKey is the etcd key of a VPC.
func VpcKey(id string) string { return vpcPrefix + id }

func vpcSubnetKey(vpc, subnet string) string { return vpcSubnetsPrefix + vpc + "/" + subnet }

// Vpc is a stored VPC.
type Vpc struct {
	ID      string       `json:"id"`
	Account string       `json:"account"`
	Name    string       `json:"name"`
	CIDR    netip.Prefix `json:"cidr"`
	Created time.Time    `json:"created"`
}

// Subnet is a stored subnet.
type Subnet struct {
	ID      string       `json:"id"`
	Account string       `json:"account"`
	VpcID   string       `json:"vpc_id"`
	Name    string       `json:"name"`
	CIDR    netip.Prefix `json:"cidr"`
	Zone    string       `json:"zone"`
	Created time.Time    `json:"created"`
}

// Usable is how many addresses of the subnet can be allocated: its CIDR less the network
// address, the gateway and the broadcast address.
func (sn Subnet) Usable() uint64 { return uint64(1)<<(32-sn.CIDR.Bits()) - 3 }
