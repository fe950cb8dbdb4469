// Package broker decides who owns each HAVIP from the ARP announcements agents report.
package broker

import "time"

// Rejection is a recorded rejected claim (records.Rejections).
type Rejection struct {
	Time               time.Time `json:"time"`
	AgentID            string    `json:"agent_id"`
	NetworkInterfaceID string    `json:"network_interface_id"`
	Reason             string    `json:"reason"`
	Message            string    `json:"message"`
}
