// Package garp parses Ethernet frames carrying ARP and recognises gratuitous announcements.
package garp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
)

// Packet is the part of an ARP frame the broker judges.
type Packet struct {
	EthernetSource net.HardwareAddr
	Operation      uint16
	SenderMAC      net.HardwareAddr
	SenderIP       netip.Addr
	TargetIP       netip.Addr
}

// Gratuitous reports whether the packet announces its sender's address (sender IP = target IP,
// not 0.0.0.0); the broker checks this again, with every other rule.
func (p Packet) Gratuitous() bool {
	return p.SenderIP.Is4() && p.SenderIP == p.TargetIP && !p.SenderIP.IsUnspecified()
}

// ErrNotARP is returned for frames that are not Ethernet/IPv4 ARP.
var ErrNotARP = errors.New("not an Ethernet/IPv4 ARP frame")

const (
	etherTypeARP  = 0x0806
	etherTypeVLAN = 0x8100
)

// Parse reads an Ethernet frame (with at most one VLAN tag) holding an Ethernet/IPv4 ARP packet.
func Parse(frame []byte) (Packet, error) {
	if len(frame) < 14 {
		return Packet{}, ErrNotARP
	}
	src := frame[6:12]
	typ := binary.BigEndian.Uint16(frame[12:14])
	body := frame[14:]
	if typ == etherTypeVLAN {
		if len(body) < 4 {
			return Packet{}, ErrNotARP
		}
		typ = binary.BigEndian.Uint16(body[2:4])
		body = body[4:]
	}
	// htype 1 (Ethernet), ptype 0x0800 (IPv4), hlen 6, plen 4, then opcode and the addresses.
	if typ != etherTypeARP || len(body) < 28 ||
		binary.BigEndian.Uint16(body[0:2]) != 1 || binary.BigEndian.Uint16(body[2:4]) != 0x0800 || body[4] != 6 || body[5] != 4 {
		return Packet{}, ErrNotARP
	}
	return Packet{
		EthernetSource: net.HardwareAddr(append([]byte(nil), src...)),
		Operation:      binary.BigEndian.Uint16(body[6:8]),
		SenderMAC:      net.HardwareAddr(append([]byte(nil), body[8:14]...)),
		SenderIP:       netip.AddrFrom4([4]byte(body[14:18])),
		TargetIP:       netip.AddrFrom4([4]byte(body[24:28])),
	}, nil
}

// Frame builds an Ethernet broadcast frame carrying an ARP packet (for tests and tools).
func Frame(p Packet) []byte {
	f := make([]byte, 14+28)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], p.EthernetSource)
	binary.BigEndian.PutUint16(f[12:14], etherTypeARP)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:2], 1)
	binary.BigEndian.PutUint16(a[2:4], 0x0800)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], p.Operation)
	copy(a[8:14], p.SenderMAC)
	s, t := p.SenderIP.As4(), p.TargetIP.As4()
	copy(a[14:18], s[:])
	copy(a[24:28], t[:])
	return f
}
