// Package keepalived renders the keepalived configuration that makes a HAVIP float between servers.
package keepalived

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"
	"time"

	"github.com/openhavip/havip/platform/ids"
)

// MaxMembers is the largest switch range Render serves: priorities fall by 10 from 100.
const MaxMembers = 10

// MaxInterfaceLen is the longest Linux interface name, in bytes (IFNAMSIZ less the NUL).
const MaxInterfaceLen = 15

// GARPRefresh is how often a MASTER announces the VIP again (garp_master_refresh). Without
// it a MASTER announces only when it becomes MASTER: after a split brain heals, the server
// that stays MASTER sends nothing, and the platform keeps as owner whichever of the two
// announced last. With it the platform follows the real MASTER within GARPRefresh (plus the
// report's trip to the broker). 5 s keeps that bound short while a MASTER sends one frame per
// 5 s, a claim the broker answers from memory (the owner refreshing itself writes nothing).
const GARPRefresh = 5 * time.Second

// GARPRefreshRepeat is how many gratuitous ARPs each refresh sends (garp_master_refresh_repeat).
// One: the frames of a refresh leave back to back, so a second one is lost with the first
// (a full queue, a broker failover); the next refresh, GARPRefresh later, is the retry.
const GARPRefreshRepeat = 1

// ErrInvalid is wrapped by every error Render returns: an input it will not put in a configuration.
var ErrInvalid = errors.New("keepalived: invalid input")

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

// CheckInterface reports why name cannot be the interface of a configuration, or nil if it
// can: a Linux interface name (1 to 15 bytes, not "." or "..", no '/', no ':', no
// whitespace) made only of ASCII letters, digits, '_', '.' and '-'. Nothing else is needed
// for real names (eth0, ens5, enp0s3, bond0.100, br-lan), and none of these characters means
// anything to keepalived's parser (braces, quotes, comments, '$' definitions, '@' conditions,
// '~' sequences, line continuation).
func CheckInterface(name string) error {
	switch {
	case name == "":
		return errors.New("the interface name is empty")
	case len(name) > MaxInterfaceLen:
		return fmt.Errorf("the interface name is %d bytes; Linux allows at most %d", len(name), MaxInterfaceLen)
	case name == "." || name == "..":
		return fmt.Errorf("%q is not an interface name", name)
	}
	for i := 0; i < len(name); i++ {
		if !interfaceByte(name[i]) {
			return fmt.Errorf("the interface name may hold only letters, digits, '_', '.' and '-'; byte %d is %q", i, name[i])
		}
	}
	return nil
}

func interfaceByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// usableIPv4 reports whether a is an IPv4 address a server or a VIP can have.
func usableIPv4(a netip.Addr) bool {
	return a.Is4() && !a.IsUnspecified() && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// check refuses any input Render would not put in a configuration: every value it writes is
// an ID that ids.Valid accepts, an IPv4 address printed by netip, a number, or an interface
// name CheckInterface accepts.
func check(havipID string, vip netip.Addr, iface string, members []Member) error {
	if !ids.Valid(ids.HaVip, havipID) {
		return fmt.Errorf("%w: %q is not a HAVIP ID", ErrInvalid, havipID)
	}
	if !usableIPv4(vip) {
		return fmt.Errorf("%w: VIP %v is not a usable IPv4 address", ErrInvalid, vip)
	}
	if err := CheckInterface(iface); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(members) < 2 || len(members) > MaxMembers {
		return fmt.Errorf("%w: %d servers; a switch range has 2 to %d", ErrInvalid, len(members), MaxMembers)
	}
	seen := map[netip.Addr]bool{vip: true}
	for i, m := range members {
		if !ids.Valid(ids.Instance, m.InstanceID) && !ids.Valid(ids.NetworkInterface, m.InstanceID) {
			return fmt.Errorf("%w: server %d: %q is not a CVM or ENI ID", ErrInvalid, i, m.InstanceID)
		}
		if !ids.Valid(ids.NetworkInterface, m.NetworkInterfaceID) {
			return fmt.Errorf("%w: server %d: %q is not an ENI ID", ErrInvalid, i, m.NetworkInterfaceID)
		}
		if !usableIPv4(m.IP) {
			return fmt.Errorf("%w: server %d: %v is not a usable IPv4 address", ErrInvalid, i, m.IP)
		}
		if seen[m.IP] {
			return fmt.Errorf("%w: server %d: address %v is the VIP's or another server's", ErrInvalid, i, m.IP)
		}
		seen[m.IP] = true
	}
	return nil
}

// VirtualRouterID is the VRRP router ID of a HAVIP's instances (1 to 255), derived from its ID.
func VirtualRouterID(havipID string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(havipID))
	return h.Sum32()%255 + 1
}

// Render returns one configuration per member, in the members' order with falling priorities
// (100, 90, …); iface "" means eth0. Every member starts as BACKUP with nopreempt, so the
// highest priority takes the VIP first and a recovered server does not take it back
// (keepalived honours nopreempt only in the BACKUP state); unicast VRRP, as a cloud network
// carries no multicast, and only from the listed peers (check_unicast_src); a MASTER
// announces the VIP again every GARPRefresh. There is no authentication block: see the
// comment it writes instead. Render refuses (with an error wrapping ErrInvalid) any input it
// has not checked, so no input can add a directive.
func Render(havipID string, vip netip.Addr, iface string, members []Member) ([]Config, error) {
	if iface == "" {
		iface = "eth0"
	}
	if err := check(havipID, vip, iface, members); err != nil {
		return nil, err
	}
	vrid := VirtualRouterID(havipID)
	out := make([]Config, len(members))
	for i, m := range members {
		prio := uint32(100 - 10*i)
		var b strings.Builder
		fmt.Fprintf(&b, "# HAVIP %s (%s) on %s, ENI %s\n", havipID, vip, m.InstanceID, m.NetworkInterfaceID)
		fmt.Fprintf(&b, "vrrp_instance %s {\n", strings.ReplaceAll(havipID, "-", "_"))
		fmt.Fprintf(&b, "    state BACKUP               # every node starts as backup; the highest priority takes over\n")
		fmt.Fprintf(&b, "    interface %s\n", iface)
		fmt.Fprintf(&b, "    virtual_router_id %d\n", vrid)
		fmt.Fprintf(&b, "    nopreempt                  # a recovered node does not take the VIP back\n")
		fmt.Fprintf(&b, "    priority %d\n", prio)
		fmt.Fprintf(&b, "    advert_int 1\n")
		fmt.Fprintf(&b, "    # The MASTER announces the VIP every %d s, so the platform follows it after a split brain.\n", int(GARPRefresh/time.Second))
		fmt.Fprintf(&b, "    garp_master_refresh %d\n", int(GARPRefresh/time.Second))
		fmt.Fprintf(&b, "    garp_master_refresh_repeat %d\n", GARPRefreshRepeat)
		fmt.Fprintf(&b, "    # No authentication: VRRPv3 (RFC 5798) dropped it, and PASS sends its password in clear.\n")
		fmt.Fprintf(&b, "    # Adverts count only from the peers listed below.\n")
		fmt.Fprintf(&b, "    check_unicast_src\n")
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
	return out, nil
}
