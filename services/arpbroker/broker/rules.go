package broker

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/openhavip/havip/platform/records"
)

// Operation is an ARP opcode.
type Operation int

// The ARP opcodes a gratuitous ARP may carry.
const (
	OpRequest Operation = 1
	OpReply   Operation = 2
)

// Report is one ARP packet an agent saw on an ENI's port.
type Report struct {
	AgentID string
	// Identity is the SPIFFE ID of the agent that reports (from its certificate; empty on a
	// plaintext development server): only the identity that opened a session reports under it.
	Identity           string
	Session            int64
	NetworkInterfaceID string
	EthernetSourceMAC  string
	SenderMAC          string
	SenderIP           string
	TargetIP           string
	Op                 Operation
	// Seen is when the agent saw the packet, on the broker's clock (the report's arrival less
	// the age the agent gave); zero when unknown. An owner change is measured from it.
	Seen time.Time

	deferred bool // judged again after a hold-down
}

// Reasons a claim is rejected.
const (
	ReasonBadOperation   = "InvalidOperation"
	ReasonMalformed      = "Malformed"
	ReasonSenderIPZero   = "SenderIpZero"
	ReasonNotGratuitous  = "NotGratuitous"
	ReasonMACMismatch    = "EthernetSourceMismatch"
	ReasonUnknownENI     = "UnknownNetworkInterface"
	ReasonSpoofedMAC     = "SpoofedMac"
	ReasonUnknownVIP     = "UnknownVip"
	ReasonSubnetMismatch = "SubnetMismatch"
	ReasonOutsideRange   = "OutsideSwitchRange"
	ReasonNotAttached    = "NotAttached"
	ReasonNoSession      = "NoSession"
	ReasonWrongHost      = "WrongHost"
	// ReasonRevoked marks an owner the broker removed because it lost the right to the HAVIP
	// (a range edit, a detach, a delete); the event's message names the rule it now breaks.
	ReasonRevoked = "OwnerRevoked"
)

// RuleError is a claim that breaks a rule.
type RuleError struct {
	Reason  string
	Message string
}

// Error implements error.
func (r *RuleError) Error() string { return r.Reason + ": " + r.Message }

func reject(reason, format string, args ...any) *RuleError {
	return &RuleError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// lookup is what the rules need to know of the inventory.
type lookup interface {
	eni(id string) (records.NetworkInterface, bool)
	havipByVIP(vpcID string, vip netip.Addr) (records.HaVip, bool)
}

// normMAC lowercases a MAC and checks its shape.
func normMAC(s string) (string, bool) {
	s = strings.ToLower(s)
	if len(s) != 17 {
		return "", false
	}
	for i := 0; i < 17; i++ {
		c := s[i]
		if i%3 == 2 {
			if c != ':' {
				return "", false
			}
		} else if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return s, true
}

// check applies every rule to a report and returns the HAVIP and ENI it claims for.
func check(l lookup, r Report) (records.HaVip, records.NetworkInterface, *RuleError) {
	if r.Op != OpRequest && r.Op != OpReply {
		return records.HaVip{}, records.NetworkInterface{}, reject(ReasonBadOperation, "ARP opcode %d is neither request nor reply", r.Op)
	}
	sender, err1 := netip.ParseAddr(r.SenderIP)
	target, err2 := netip.ParseAddr(r.TargetIP)
	ethSrc, ok1 := normMAC(r.EthernetSourceMAC)
	senderMAC, ok2 := normMAC(r.SenderMAC)
	if err1 != nil || err2 != nil || !sender.Is4() || !target.Is4() || !ok1 || !ok2 {
		return records.HaVip{}, records.NetworkInterface{}, reject(ReasonMalformed, "addresses must be IPv4 and MACs aa:bb:cc:dd:ee:ff")
	}
	if sender.IsUnspecified() {
		return records.HaVip{}, records.NetworkInterface{}, reject(ReasonSenderIPZero, "sender IP 0.0.0.0 is an ARP probe, not an announcement")
	}
	if sender != target {
		return records.HaVip{}, records.NetworkInterface{}, reject(ReasonNotGratuitous, "sender IP %s differs from target IP %s: not a gratuitous ARP", sender, target)
	}
	if ethSrc != senderMAC {
		return records.HaVip{}, records.NetworkInterface{}, reject(ReasonMACMismatch, "Ethernet source %s differs from ARP sender %s", ethSrc, senderMAC)
	}
	e, ok := l.eni(r.NetworkInterfaceID)
	if !ok {
		return records.HaVip{}, records.NetworkInterface{}, reject(ReasonUnknownENI, "no network interface %s", r.NetworkInterfaceID)
	}
	h, ok := l.havipByVIP(e.VpcID, sender)
	if !ok {
		return records.HaVip{}, e, reject(ReasonUnknownVIP, "no HAVIP has address %s in %s", sender, e.VpcID)
	}
	if e.MAC != senderMAC {
		return h, e, reject(ReasonSpoofedMAC, "sender MAC %s is not the MAC %s of %s", senderMAC, e.MAC, e.ID)
	}
	return h, e, admissible(h, e)
}

// admissible applies the rules that decide whether an ENI may hold a HAVIP at all: the claim
// rules after the packet's own, and the ones the broker applies again to a current owner
// whenever the HAVIP or the ENI changes.
func admissible(h records.HaVip, e records.NetworkInterface) *RuleError {
	if e.SubnetID != h.SubnetID || e.VpcID != h.VpcID || e.Account != h.Account {
		return reject(ReasonSubnetMismatch, "%s is in %s, HAVIP %s in %s", e.ID, e.SubnetID, h.ID, h.SubnetID)
	}
	if e.InstanceID == "" {
		return reject(ReasonNotAttached, "%s is attached to no instance", e.ID)
	}
	if h.CheckAssociate && !inRange(h, e) {
		return reject(ReasonOutsideRange, "%s (of %s) is outside the switch range of %s", e.ID, e.InstanceID, h.ID)
	}
	return nil
}

// inRange reports whether an ENI may take a HAVIP: listed itself, or its CVM is listed (which
// covers every ENI of that CVM, the primary one included).
func inRange(h records.HaVip, e records.NetworkInterface) bool {
	return slices.ContainsFunc(h.Associations, func(a records.Association) bool {
		return a.Type == records.TypeENI && a.InstanceID == e.ID || a.Type == records.TypeCVM && e.InstanceID != "" && a.InstanceID == e.InstanceID
	})
}
