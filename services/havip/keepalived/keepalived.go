// Package keepalived renders the keepalived configuration that makes a HAVIP float between servers.
package keepalived

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"
)

// Member is one server of the switch range.
type Member struct {
	InstanceID         string // the switch-range entry (CVM or ENI ID)
	NetworkInterfaceID string // the ENI whose primary IP speaks VRRP
	IP                 netip.Addr
}

// Config is one member's configuration.
type Config struct {
	Member
	Priority uint32
	Text     string
}

// Render returns one configuration per member, in the members' order with falling priorities
// (100, 90, …). Every member starts as BACKUP with nopreempt, so the highest priority takes
// the VIP first and a recovered server does not take it back (keepalived honours nopreempt only
// in the BACKUP state); unicast VRRP, as a cloud network carries no multicast.
func Render(havipID string, vip netip.Addr, iface string, members []Member) []Config {
	if iface == "" {
		iface = "eth0"
	}
	h := fnv.New32a()
	h.Write([]byte(havipID))
	vrid := h.Sum32()%255 + 1
	sum := sha256.Sum256([]byte(havipID))
	pass := hex.EncodeToString(sum[:])[:8] // PASS authentication uses 8 characters
	out := make([]Config, len(members))
	for i, m := range members {
		prio := uint32(100 - 10*i)
		var b strings.Builder
		fmt.Fprintf(&b, "# HAVIP %s (%s) on %s: %s\n", havipID, vip, m.InstanceID, m.NetworkInterfaceID)
		fmt.Fprintf(&b, "vrrp_instance %s {\n", strings.ReplaceAll(havipID, "-", "_"))
		fmt.Fprintf(&b, "    state BACKUP               # every node starts as backup; the highest priority takes over\n")
		fmt.Fprintf(&b, "    interface %s\n", iface)
		fmt.Fprintf(&b, "    virtual_router_id %d\n", vrid)
		fmt.Fprintf(&b, "    nopreempt                  # a recovered node does not take the VIP back\n")
		fmt.Fprintf(&b, "    priority %d\n", prio)
		fmt.Fprintf(&b, "    advert_int 1\n")
		fmt.Fprintf(&b, "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n", pass)
		fmt.Fprintf(&b, "    unicast_src_ip %s\n", m.IP)
		fmt.Fprintf(&b, "    unicast_peer {\n")
		for j, p := range members {
			if j != i {
				fmt.Fprintf(&b, "        %s\n", p.IP)
			}
		}
		fmt.Fprintf(&b, "    }\n")
		fmt.Fprintf(&b, "    virtual_ipaddress {\n        %s                # the HAVIP\n    }\n", vip)
		fmt.Fprintf(&b, "}\n")
		out[i] = Config{Member: m, Priority: prio, Text: b.String()}
	}
	return out
}
