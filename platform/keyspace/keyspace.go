// Package keyspace is the etcd key layout that services share when they join in one transaction.
package keyspace

// Root is the prefix of every key the control plane writes.
const Root = "/havip/"

// IPAM keys (written by ipamd; havipd commits its VIP reservation among them).
const (
	// Addresses holds one key per allocated private address: <subnet-id>/<ip>.
	Addresses = Root + "ipam/ip/"
	// NetworkInterfaces holds the ENI records: <eni-id>.
	NetworkInterfaces = Root + "ipam/eni/"
	// Instances holds the CVM records: <ins-id>.
	Instances = Root + "ipam/instance/"
	// Subnets holds the subnet records: <subnet-id>.
	Subnets = Root + "ipam/subnet/"
)

// HAVIP keys (written by havipd).
const (
	// HaVips holds the HAVIP records: <havip-id>.
	HaVips = Root + "havip/havip/"
	// HaVipTokens maps a client token to the HAVIP it created: <account>/<token>.
	HaVipTokens = Root + "havip/token/"
	// HaVipAddress binds an EIP to a HAVIP: <havip-id> → EIP ID. Deleting a HAVIP requires it
	// absent in the same transaction, so a concurrent bind and delete cannot both win.
	HaVipAddress = Root + "havip/address/"
)

// EIP keys (written by eipd, and by havipd when it binds an EIP to a HAVIP).
const (
	// EipIPs holds the EIPs, one key per public address (an ipalloc root): public/<ip> → the
	// EIP record, which reads as an ipalloc record too (owner: the EIP ID), or, for a moment, an
	// ipalloc reservation. One key makes the address and its EIP one write.
	EipIPs = Root + "eip/ip/"
	// EipIDCounter numbers the EIP IDs (platform/idseq): IDs are unique by construction, so an
	// EIP needs no key of its own to prove its ID unused.
	EipIDCounter = Root + "eip/id-counter"
	// EipTokens maps a client token to the EIPs it allocated: <account>/<token>.
	EipTokens = Root + "eip/token/"
	// EipENIBindings holds one key per ENI private IP that has an EIP: <eni-id>/<ip> → EIP ID.
	EipENIBindings = Root + "eip/eni-binding/"
)

// ARP broker keys (written by arpbrokerd).
const (
	// Owners holds the current owner of each HAVIP: <havip-id>, under the agent session's lease.
	// Its ModRevision is the fencing revision of the owner change.
	Owners = Root + "arp/owner/"
	// BrokerElection is the election prefix of the arpbrokerd replicas.
	BrokerElection = Root + "arp/leader"
	// Rejections holds recent rejected claims: <havip-id>/<nanoseconds>, under an expiring lease.
	Rejections = Root + "arp/rejection/"
)

// HaVip is the key of a HAVIP record.
func HaVip(id string) string { return HaVips + id }

// Owner is the key of a HAVIP's ownership record.
func Owner(havipID string) string { return Owners + havipID }

// Address is the key of an allocated private address.
func Address(subnetID, ip string) string { return Addresses + subnetID + "/" + ip }
