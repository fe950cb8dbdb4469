// Package broker decides who owns each HAVIP from the ARP announcements agents report.
package broker

// Session is an agent's session as the broker records it (records.Sessions), under its lease.
type Session struct {
	AgentID string `json:"agent_id"`
	HostID  string `json:"host_id"`
	// Identity is the SPIFFE ID of the agent that opened the session (empty on a plaintext
	// development server).
	Identity string `json:"identity,omitempty"`
}
