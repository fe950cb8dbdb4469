// Package records owns every etcd record that more than one service reads or writes: keys, Go types, encoding.
//
// Records are stored as JSON (kvcache.EncodeJSON, kvcache.DecodeJSON). Who writes which prefix,
// and who reads it, is documented in keyspace.md beside this file.
// A service keeps its private records (tokens, VPCs, subnets) in its own store; anything another
// service reads or joins in a transaction lives here, so there is one struct per record.
package records

import (
	"net/netip"
	"time"

	"github.com/openhavip/havip/platform/ipalloc"
)

// Root is the prefix of every key the control plane writes.
const Root = "/havip/"

// IPAM keys (written by ipamd; havipd commits its VIP reservation among them).
const (
	// Addresses holds one key per allocated private address: <subnet-id>/<ip> (an ipalloc root,
	// the subnet ID being the pool) → an ipalloc.Record.
	Addresses = Root + "ipam/ip/"
	// NetworkInterfaces holds the ENI records: <eni-id> → NetworkInterface.
	NetworkInterfaces = Root + "ipam/eni/"
	// Instances holds the CVM records: <ins-id> → Instance.
	Instances = Root + "ipam/instance/"
	// Subnets holds the subnet records: <subnet-id> (ipamd's own record).
	Subnets = Root + "ipam/subnet/"
)

// HAVIP keys (written by havipd).
const (
	// HaVips holds the HAVIP records: <havip-id> → HaVip.
	HaVips = Root + "havip/havip/"
	// HaVipTokens maps a client token to the HAVIP it created: <account>/<token>.
	HaVipTokens = Root + "havip/token/"
	// HaVipAddresses binds an EIP to a HAVIP: <havip-id> → AddressBinding. Deleting a HAVIP
	// requires it absent in the same transaction, so a concurrent bind and delete cannot both win.
	HaVipAddresses = Root + "havip/address/"
)

// EIP keys (written by eipd, and by havipd when it binds an EIP to a HAVIP).
const (
	// EipIPs holds the EIPs, one key per public address (an ipalloc root): public/<ip> → Eip,
	// which reads as an ipalloc.Record too (owner: the EIP ID), or, for a moment, an ipalloc
	// reservation. One key makes the address and its EIP one write.
	EipIPs = Root + "eip/ip/"
	// EipIDCounter numbers the EIP IDs (platform/idseq): IDs are unique by construction, so an
	// EIP needs no key of its own to prove its ID unused.
	EipIDCounter = Root + "eip/id-counter"
	// EipTokens maps a client token to the EIPs it allocated: <account>/<token>.
	EipTokens = Root + "eip/token/"
	// EipENIBindings holds one key per ENI private IP that has an EIP: <eni-id>/<ip> → EIP ID.
	// ipamd deletes an ENI (or a CVM with its primary ENI) only while no key is under
	// <eni-id>/, compared in the delete's transaction.
	EipENIBindings = Root + "eip/eni-binding/"
	// EipPool is the ipalloc pool ID of the public addresses under EipIPs.
	EipPool = "public"
)

// ARP broker keys (written by arpbrokerd).
const (
	// Owners holds the current owner of each HAVIP: <havip-id> → Owner, under the agent
	// session's lease. Its ModRevision is the fencing revision of the owner change.
	Owners = Root + "arp/owner/"
	// BrokerElection is the election prefix of the arpbrokerd replicas.
	BrokerElection = Root + "arp/leader"
	// Rejections holds recent rejected claims and owner revocations, under an expiring lease,
	// each under three indexes: havip/<havip-id>/<id>, vip/<ip>/<id>, eni/<eni-id>/<id>.
	Rejections = Root + "arp/rejection/"
	// Sessions holds one key per live agent session: <lease-id in hex> → the agent and host,
	// under the session's own lease, so it vanishes when the session ends.
	Sessions = Root + "arp/session/"
)

// AddressKey is the key of an allocated private address of a subnet.
func AddressKey(subnetID string, ip netip.Addr) string {
	return ipalloc.KeyAt(Addresses, subnetID, ip.String())
}

// NetworkInterfaceKey is the key of an ENI record.
func NetworkInterfaceKey(id string) string { return NetworkInterfaces + id }

// InstanceKey is the key of a CVM record.
func InstanceKey(id string) string { return Instances + id }

// SubnetKey is the key of a subnet record.
func SubnetKey(id string) string { return Subnets + id }

// HaVipKey is the key of a HAVIP record.
func HaVipKey(id string) string { return HaVips + id }

// HaVipAddressKey is the key of the EIP binding of a HAVIP.
func HaVipAddressKey(havipID string) string { return HaVipAddresses + havipID }

// OwnerKey is the key of a HAVIP's ownership record.
func OwnerKey(havipID string) string { return Owners + havipID }

// EipKey is the key of the EIP whose public address is ip: the address's allocation key.
func EipKey(ip string) string { return ipalloc.KeyAt(EipIPs, EipPool, ip) }

// Instance is a CVM (written by ipamd).
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

// NetworkInterface is an ENI (written by ipamd): its address is held at AddressKey(SubnetID, IP).
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

// Instance types of a switch-range entry.
const (
	TypeCVM = "CVM"
	TypeENI = "ENI"
)

// Association is one entry of a HAVIP's switch range.
type Association struct {
	InstanceID string `json:"instance_id"`
	Type       string `json:"type"`
}

// HaVip is a HAVIP (written by havipd): its VIP is held at AddressKey(SubnetID, VIP).
type HaVip struct {
	ID             string        `json:"id"`
	Account        string        `json:"account"`
	Name           string        `json:"name"`
	VpcID          string        `json:"vpc_id"`
	SubnetID       string        `json:"subnet_id"`
	VIP            netip.Addr    `json:"vip"`
	CheckAssociate bool          `json:"check_associate"`
	Associations   []Association `json:"associations,omitempty"`
	ClientToken    string        `json:"client_token,omitempty"`
	Created        time.Time     `json:"created"`
}

// AddressBinding is the EIP bound to a HAVIP (HaVipAddresses), written with the EIP's side in one
// transaction (platform/eipbind).
type AddressBinding struct {
	AddressID string `json:"address_id"`
	AddressIP string `json:"address_ip"`
}

// Owner is the ARP broker's record of which ENI holds a HAVIP now (Owners), read by havipd and
// eipd. Its ModRevision is the fencing revision of the owner change.
type Owner struct {
	HaVipID            string     `json:"havip_id"`
	VIP                netip.Addr `json:"vip"`
	NetworkInterfaceID string     `json:"network_interface_id"`
	InstanceID         string     `json:"instance_id"`
	HostID             string     `json:"host_id"`
	AgentID            string     `json:"agent_id"`
	Session            int64      `json:"session"`
	Changed            time.Time  `json:"changed"`
}

// Rejection is the ARP broker's record of a rejected claim, or of an owner it revoked
// (Rejections), read by arpbrokerd for operators and by havipd for the HAVIP's tenant.
type Rejection struct {
	Time               time.Time `json:"time"`
	AgentID            string    `json:"agent_id"`
	Identity           string    `json:"identity,omitempty"`
	NetworkInterfaceID string    `json:"network_interface_id"`
	HaVipID            string    `json:"havip_id,omitempty"`
	VIP                string    `json:"vip,omitempty"`
	Reason             string    `json:"reason"`
	Message            string    `json:"message"`
}

// The indexes of Rejections: each rejection is listed under its HAVIP, its VIP and its ENI.
const (
	RejectionByHaVip = "havip"
	RejectionByVIP   = "vip"
	RejectionByENI   = "eni"
)

// RejectionPrefix is the prefix of the rejections listed under value (a HAVIP ID, a VIP or an
// ENI ID) in index; their keys sort by time.
func RejectionPrefix(index, value string) string {
	return Rejections + index + "/" + value + "/"
}

// Eip is an EIP (written by eipd, its binding by havipd too), kept at its address's allocation
// key: its JSON is an ipalloc.Record as well (owner is the EIP ID). At most one of HaVipID and
// NetworkInterfaceID is set.
type Eip struct {
	ID      string `json:"owner"`
	Account string `json:"account"`
	// Reservation is set while the key is only an allocation's reservation (a multi-address
	// allocation not yet recorded); such a key is no EIP yet.
	Reservation        string    `json:"reservation,omitempty"`
	IP                 string    `json:"ip"`
	Name               string    `json:"name"`
	HaVipID            string    `json:"havip_id,omitempty"`
	NetworkInterfaceID string    `json:"network_interface_id,omitempty"`
	PrivateIP          string    `json:"private_ip,omitempty"`
	Created            time.Time `json:"created"`
}

// Bound reports whether the EIP has a target.
func (e Eip) Bound() bool { return e.HaVipID != "" || e.NetworkInterfaceID != "" }
