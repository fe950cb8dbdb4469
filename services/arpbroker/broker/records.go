// Package broker decides who owns each HAVIP from the ARP announcements agents report.
package broker

import (
	"net/netip"
	"time"
)

// The records below are read from other services' keys (platform/keyspace); only the fields the
// broker needs are named, with the JSON names those services write.

// eni is an ENI as ipamd stores it.
type eni struct {
	ID         string     `json:"id"`
	VpcID      string     `json:"vpc_id"`
	SubnetID   string     `json:"subnet_id"`
	MAC        string     `json:"mac"`
	IP         netip.Addr `json:"ip"`
	Primary    bool       `json:"primary"`
	InstanceID string     `json:"instance_id"`
}

// instance is a CVM as ipamd stores it.
type instance struct {
	ID     string `json:"id"`
	HostID string `json:"host_id"`
}

// association is a switch-range entry as havipd stores it.
type association struct {
	InstanceID string `json:"instance_id"`
	Type       string `json:"type"`
}

// havip is a HAVIP as havipd stores it.
type havip struct {
	ID             string        `json:"id"`
	VpcID          string        `json:"vpc_id"`
	SubnetID       string        `json:"subnet_id"`
	VIP            netip.Addr    `json:"vip"`
	CheckAssociate bool          `json:"check_associate"`
	Associations   []association `json:"associations"`
}

// Owner is the ownership record the broker writes (keyspace.Owners), read by havipd and eipd.
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

// Rejection is a recorded rejected claim (keyspace.Rejections).
type Rejection struct {
	Time               time.Time `json:"time"`
	AgentID            string    `json:"agent_id"`
	NetworkInterfaceID string    `json:"network_interface_id"`
	Reason             string    `json:"reason"`
	Message            string    `json:"message"`
}
