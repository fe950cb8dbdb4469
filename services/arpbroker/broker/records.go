// Package broker decides who owns each HAVIP from the ARP announcements agents report.
package broker

import "time"

// Session is an agent's session as the broker records it (records.Sessions), under its lease.
type Session struct {
	AgentID string `json:"agent_id"`
	HostID  string `json:"host_id"`
	// Identity is the SPIFFE ID of the agent that opened the session (empty on a plaintext
	// development server).
	Identity string `json:"identity,omitempty"`
}

// Rejection is a recorded rejected claim, or an owner the broker revoked (records.Rejections).
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
