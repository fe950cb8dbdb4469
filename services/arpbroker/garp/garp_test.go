package garp_test

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/openhavip/havip/services/arpbroker/garp"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestParse(t *testing.T) {
	t.Parallel()
	announce := garp.Packet{EthernetSource: mac("02:00:00:00:00:01"), Operation: 1, SenderMAC: mac("02:00:00:00:00:01"),
		SenderIP: netip.MustParseAddr("10.0.0.12"), TargetIP: netip.MustParseAddr("10.0.0.12")}
	frame := garp.Frame(announce)
	vlan := append(append(append([]byte{}, frame[:12]...), 0x81, 0x00, 0x00, 0x07), frame[12:]...)
	probe := announce
	probe.SenderIP = netip.MustParseAddr("0.0.0.0")
	request := announce
	request.TargetIP = netip.MustParseAddr("10.0.0.1")
	ipv4 := append([]byte{}, frame...)
	ipv4[13] = 0x00 // EtherType IPv4
	cases := []struct {
		name       string
		frame      []byte
		want       garp.Packet
		err        bool
		gratuitous bool
	}{
		{"gratuitous request", frame, announce, false, true},
		{"behind a VLAN tag", vlan, announce, false, true},
		{"probe from 0.0.0.0", garp.Frame(probe), probe, false, false},
		{"ordinary request", garp.Frame(request), request, false, false},
		{"not ARP", ipv4, garp.Packet{}, true, false},
		{"truncated", frame[:30], garp.Packet{}, true, false},
		{"empty", nil, garp.Packet{}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := garp.Parse(tc.frame)
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got.Gratuitous() != tc.gratuitous {
				t.Errorf("gratuitous %v, want %v", got.Gratuitous(), tc.gratuitous)
			}
		})
	}
}

// FuzzParse: no frame makes the parser panic, and what it accepts survives a round trip.
func FuzzParse(f *testing.F) {
	f.Add(garp.Frame(garp.Packet{EthernetSource: mac("02:00:00:00:00:01"), Operation: 2, SenderMAC: mac("02:00:00:00:00:01"),
		SenderIP: netip.MustParseAddr("10.0.0.12"), TargetIP: netip.MustParseAddr("10.0.0.12")}))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0x81, 0x00}, 40))
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := garp.Parse(frame)
		if err != nil {
			return
		}
		again, err := garp.Parse(garp.Frame(p))
		if err != nil {
			t.Fatalf("a parsed packet does not parse again: %v", err)
		}
		if !bytes.Equal(again.SenderMAC, p.SenderMAC) || !bytes.Equal(again.EthernetSource, p.EthernetSource) || again.SenderIP != p.SenderIP || again.TargetIP != p.TargetIP || again.Operation != p.Operation {
			t.Fatalf("round trip changed %+v into %+v", p, again)
		}
	})
}
