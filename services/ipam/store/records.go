// Package store keeps the IPAM inventory in etcd: VPCs, subnets, instances, ENIs and their addresses.
package store

import (
	"net/netip"
	"time"

	"github.com/openhavip/havip/platform/keyspace"
)

// Root is the etcd prefix of everything IPAM stores.
const Root = keyspace.Root + "ipam/"

// Key prefixes, one per record kind.
const (
	vpcPrefix        = Root + "vpc/"
	subnetPrefix     = keyspace.Subnets
	vpcSubnetsPrefix = Root + "vpc-subnets/" // <vpc>/<subnet>: which subnets a VPC has
	instancePrefix   = keyspace.Instances
	eniPrefix        = keyspace.NetworkInterfaces
	macPrefix        = Root + "mac/" // <mac> → ENI ID: MACs are unique
	// AddressPrefix holds one key per allocated address: <subnet>/<ip>.
	AddressPrefix = keyspace.Addresses
)

// VpcKey is the etcd key of a VPC.
func VpcKey(id string) string { return vpcPrefix + id }

// SubnetKey is the etcd key of a subnet.
func SubnetKey(id string) string { return subnetPrefix + id }

// InstanceKey is the etcd key of an instance.
func InstanceKey(id string) string { return instancePrefix + id }

// EniKey is the etcd key of an ENI.
func EniKey(id string) string { return eniPrefix + id }

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

// Instance is a stored CVM.
type Instance struct {
	ID         string     `json:"id"`
	Account    string     `json:"account"`
	VpcID      string     `json:"vpc_id"`
	SubnetID   string     `json:"subnet_id"`
	Name       string     `json:"name"`
	HostID     string     `json:"host_id"`
	PrimaryEni string     `json:"primary_eni"`
	PrivateIP  netip.Addr `json:"private_ip"`
	Created    time.Time  `json:"created"`
}

// NetworkInterface is a stored ENI.
type NetworkInterface struct {
	ID         string     `json:"id"`
	Account    string     `json:"account"`
	VpcID      string     `json:"vpc_id"`
	SubnetID   string     `json:"subnet_id"`
	Name       string     `json:"name"`
	MAC        string     `json:"mac"`
	IP         netip.Addr `json:"ip"`
	Primary    bool       `json:"primary"`
	InstanceID string     `json:"instance_id,omitempty"`
	Created    time.Time  `json:"created"`
}
