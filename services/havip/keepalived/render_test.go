package keepalived_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openhavip/havip/services/havip/keepalived"
)

// stmt is one statement of keepalived's configuration syntax: its words, and the statements of
// the block it opens, if it opens one.
type stmt struct {
	Words []string
	Open  bool
	Block []stmt
}

// parse reads a configuration the way keepalived's parser splits it, and stricter wherever the
// two could differ, so that nothing keepalived would see as a directive hides from the test:
// a newline, '{' and '}' each end a statement (keepalived accepts "a { b }" on one line); '{'
// and '}' are tokens wherever they stand; '#' or '!' begins a comment only at the start of a
// word (elsewhere it is an error, not silently part of a word); outside comments a word may
// hold only letters, digits, '_', '.' and '-' (no quote, '$', '@', '~', '\' or anything else
// keepalived gives a meaning); the text is printable ASCII and newlines; braces balance.
func parse(text string) ([]stmt, error) {
	for i := 0; i < len(text); i++ {
		if c := text[i]; c != '\n' && (c < 0x20 || c > 0x7e) {
			return nil, fmt.Errorf("byte %d is %q: not printable ASCII", i, c)
		}
	}
	type frame struct{ stmts []stmt }
	stack := []*frame{{}}
	var words []string
	flush := func() {
		if len(words) > 0 {
			top := stack[len(stack)-1]
			top.stmts = append(top.stmts, stmt{Words: words})
			words = nil
		}
	}
	for n, line := range strings.Split(text, "\n") {
		word := ""
		endWord := func() {
			if word != "" {
				words = append(words, word)
				word = ""
			}
		}
	scan:
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case c == ' ' || c == '\t':
				endWord()
			case c == '#' || c == '!':
				if word != "" {
					return nil, fmt.Errorf("line %d: comment character inside the word %q", n+1, word)
				}
				break scan
			case c == '{':
				endWord()
				if len(words) == 0 {
					return nil, fmt.Errorf("line %d: a block opened by no keyword", n+1)
				}
				stack = append(stack, &frame{})
				top := stack[len(stack)-2]
				top.stmts = append(top.stmts, stmt{Words: words, Open: true})
				words = nil
			case c == '}':
				endWord()
				flush()
				if len(stack) == 1 {
					return nil, fmt.Errorf("line %d: '}' closes no block", n+1)
				}
				done := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				top := stack[len(stack)-1]
				top.stmts[len(top.stmts)-1].Block = done.stmts
			case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-':
				word += string(c)
			default:
				return nil, fmt.Errorf("line %d: %q outside a comment", n+1, c)
			}
		}
		endWord()
		flush()
	}
	if len(stack) != 1 {
		return nil, fmt.Errorf("%d blocks left open", len(stack)-1)
	}
	return stack[0].stmts, nil
}

// expected is the structure of member i's configuration, built from the inputs alone.
func expected(havipID string, vip netip.Addr, iface string, members []keepalived.Member, i int) []stmt {
	var peers []stmt
	for j, m := range members {
		if j != i {
			peers = append(peers, stmt{Words: []string{m.IP.String()}})
		}
	}
	w := func(words ...string) stmt { return stmt{Words: words} }
	return []stmt{{Words: []string{"vrrp_instance", strings.ReplaceAll(havipID, "-", "_")}, Open: true, Block: []stmt{
		w("state", "BACKUP"),
		w("interface", iface),
		w("virtual_router_id", strconv.Itoa(int(keepalived.VirtualRouterID(havipID)))),
		w("nopreempt"),
		w("priority", strconv.Itoa(100-10*i)),
		w("advert_int", "1"),
		w("garp_master_refresh", "5"),
		w("garp_master_refresh_repeat", "1"),
		w("check_unicast_src"),
		w("unicast_src_ip", members[i].IP.String()),
		{Words: []string{"unicast_peer"}, Open: true, Block: peers},
		{Words: []string{"virtual_ipaddress"}, Open: true, Block: []stmt{w(vip.String())}},
	}}}
}

// linuxName is the kernel's rule for an interface name (dev_valid_name), written apart from
// the package's own check.
func linuxName(s string) bool {
	return s != "" && len(s) < 16 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n\v\f\r")
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, text string
		want       []stmt
		err        bool
	}{
		{name: "blocks and comments", text: "a b # c\n! d\nx {\n  y 1 { z }\n}\n", want: []stmt{
			{Words: []string{"a", "b"}},
			{Words: []string{"x"}, Open: true, Block: []stmt{{Words: []string{"y", "1"}, Open: true, Block: []stmt{{Words: []string{"z"}}}}}},
		}},
		{name: "a brace ends a statement", text: "interface eth0 { notify_master x.sh\n}\n", want: []stmt{
			{Words: []string{"interface", "eth0"}, Open: true, Block: []stmt{{Words: []string{"notify_master", "x.sh"}}}},
		}},
		{name: "unbalanced open", text: "a {\n", err: true},
		{name: "unbalanced close", text: "a\n}\n", err: true},
		{name: "block without keyword", text: "{ a }\n", err: true},
		{name: "quote", text: "a \"b c\"\n", err: true},
		{name: "slash", text: "notify /tmp/x.sh\n", err: true},
		{name: "comment inside a word", text: "a#b\n", err: true},
		{name: "dollar", text: "$X=1\n", err: true},
		{name: "carriage return", text: "a\rb\n", err: true},
		{name: "non-ASCII", text: "a \u2028b\n", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(tc.text)
			if (err != nil) != tc.err {
				t.Fatalf("parse error %v, want error %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckInterface(t *testing.T) {
	tests := []struct {
		name, iface string
		ok          bool
	}{
		{"eth0", "eth0", true},
		{"predictable", "enp0s31f6", true},
		{"vlan", "bond0.100", true},
		{"dash underscore", "br-lan_1", true},
		{"fifteen bytes", "abcdefghijklmno", true},
		{"empty", "", false},
		{"sixteen bytes", "abcdefghijklmnop", false},
		{"dot", ".", false},
		{"dot dot", "..", false},
		{"slash", "eth0/1", false},
		{"alias label", "eth0:1", false},
		{"space", "eth 0", false},
		{"injection", "eth0 { notify_master /tmp/x.sh", false},
		{"newline", "eth0\nnotify_master", false},
		{"brace", "eth0}", false},
		{"comment", "eth0#x", false},
		{"quote", `"eth0"`, false},
		{"dollar", "$IFACE", false},
		{"at", "eth0@if5", false},
		{"NUL", "eth\x000", false},
		{"non-ASCII", "ethé", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := keepalived.CheckInterface(tc.iface)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckInterface(%q) = %v, want ok %v", tc.iface, err, tc.ok)
			}
			if err == nil && !linuxName(tc.iface) {
				t.Errorf("%q accepted but Linux refuses it", tc.iface)
			}
		})
	}
}

// good returns n valid, distinct members.
func good(n int) []keepalived.Member {
	out := make([]keepalived.Member, n)
	for i := range out {
		out[i] = keepalived.Member{
			InstanceID:         fmt.Sprintf("ins-aaaaaa%02d", i),
			NetworkInterfaceID: fmt.Sprintf("eni-aaaaaa%02d", i),
			IP:                 netip.AddrFrom4([4]byte{10, 1, 0, byte(10 + i)}),
		}
	}
	return out
}

func TestRenderRefuses(t *testing.T) {
	vip := netip.MustParseAddr("10.1.0.200")
	with := func(i int, f func(*keepalived.Member)) []keepalived.Member {
		ms := good(2)
		f(&ms[i])
		return ms
	}
	tests := []struct {
		name    string
		havipID string
		vip     netip.Addr
		iface   string
		members []keepalived.Member
	}{
		{"interface injection", "havip-abcd1234", vip, "eth0 { notify_master /tmp/x.sh", good(2)},
		{"interface newline", "havip-abcd1234", vip, "eth0\nnotify_master /tmp/x.sh", good(2)},
		{"interface too long", "havip-abcd1234", vip, "abcdefghijklmnop", good(2)},
		{"HAVIP ID injection", "havip-abcd1234 {\nnotify_master /tmp/x.sh", vip, "eth0", good(2)},
		{"HAVIP ID upper case", "havip-ABCD1234", vip, "eth0", good(2)},
		{"no VIP", "havip-abcd1234", netip.Addr{}, "eth0", good(2)},
		{"IPv6 VIP with a zone", "havip-abcd1234", netip.MustParseAddr("fe80::1%eth0"), "eth0", good(2)},
		{"IPv4-mapped VIP", "havip-abcd1234", netip.MustParseAddr("::ffff:10.1.0.200"), "eth0", good(2)},
		{"multicast VIP", "havip-abcd1234", netip.MustParseAddr("224.0.0.18"), "eth0", good(2)},
		{"one server", "havip-abcd1234", vip, "eth0", good(1)},
		{"eleven servers", "havip-abcd1234", vip, "eth0", good(11)},
		{"instance ID injection", "havip-abcd1234", vip, "eth0", with(0, func(m *keepalived.Member) { m.InstanceID = "ins-aaaaaaaa\nnotify_master /tmp/x.sh" })},
		{"ENI ID injection", "havip-abcd1234", vip, "eth0", with(1, func(m *keepalived.Member) { m.NetworkInterfaceID = "eni-aaaaaaaa # x" })},
		{"ENI ID of another kind", "havip-abcd1234", vip, "eth0", with(1, func(m *keepalived.Member) { m.NetworkInterfaceID = "ins-aaaaaaaa" })},
		{"server address with a zone", "havip-abcd1234", vip, "eth0", with(1, func(m *keepalived.Member) {
			m.IP = netip.MustParseAddr("fe80::1%eth0 { notify_master /tmp/x.sh")
		})},
		{"server address unspecified", "havip-abcd1234", vip, "eth0", with(0, func(m *keepalived.Member) { m.IP = netip.IPv4Unspecified() })},
		{"server address twice", "havip-abcd1234", vip, "eth0", with(1, func(m *keepalived.Member) { m.IP = good(1)[0].IP })},
		{"server address is the VIP", "havip-abcd1234", vip, "eth0", with(0, func(m *keepalived.Member) { m.IP = vip })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keepalived.Render(tc.havipID, tc.vip, tc.iface, tc.members)
			if !errors.Is(err, keepalived.ErrInvalid) {
				t.Fatalf("Render = %v, %v; want an error wrapping ErrInvalid", got, err)
			}
		})
	}
}

// FuzzRender: whatever the inputs, Render either refuses them or writes exactly the expected
// directives, each value the checked input, so no input adds a directive or a block.
func FuzzRender(f *testing.F) {
	// The seed corpus: valid inputs, and injection attempts through every input.
	seeds := []struct {
		havipID, vip, iface, ins1, eni1, ip1, ins2, eni2, ip2 string
		extra                                                 uint8
	}{
		{"havip-abcd1234", "10.0.0.12", "eth0", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-0000zzzz", "172.16.16.12", "", "eni-aaaaaaaa", "eni-aaaaaaaa", "172.16.16.5", "eni-bbbbbbbb", "eni-bbbbbbbb", "172.16.16.6", 8},
		{"havip-abcd1234", "10.0.0.12", "bond0.100", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 9},
		{"havip-abcd1234", "10.0.0.12", "eth0 { notify_master /tmp/x.sh", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-abcd1234", "10.0.0.12", "eth0\nnotify_master /tmp/x.sh", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-abcd1234", "10.0.0.12", "eth0}\nvrrp_script x {", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-abcd1234", "10.0.0.12", "eth0 # x", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-abcd1234", "10.0.0.12", "$IFACE", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-abcd1234", "10.0.0.12", "eth0\\", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-abcd1234", "10.0.0.12", "eth0\u2028x", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-abcd1234", "10.0.0.12", "..", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-abcd1234 {\nnotify_master /tmp/x.sh", "10.0.0.12", "eth0", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-abcd1234", "fe80::1%eth0 { notify_master /tmp/x.sh", "eth0", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-abcd1234", "10.0.0.12", "eth0", "ins-aaaaaaaa\nnotify_master /tmp/x.sh", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-abcd1234", "10.0.0.12", "eth0", "ins-aaaaaaaa", "eni-aaaaaaaa } notify_master /tmp/x.sh", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
		{"havip-abcd1234", "10.0.0.12", "eth0", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "fe80::2%x\n}\nvrrp_script y {", 0},
		{"havip-abcd1234", "10.0.0.12", "eth0", "ins-aaaaaaaa", "eni-aaaaaaaa", "10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.5", 0},
		{"havip-abcd1234", "10.0.0.12", "eth0", "ins-aaaaaaaa", "eni-aaaaaaaa", "::ffff:10.0.0.5", "ins-bbbbbbbb", "eni-bbbbbbbb", "10.0.0.6", 0},
	}
	for _, s := range seeds {
		f.Add(s.havipID, s.vip, s.iface, s.ins1, s.eni1, s.ip1, s.ins2, s.eni2, s.ip2, s.extra)
	}
	addr := func(s string) netip.Addr {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{} // Render must refuse the zero address
		}
		return a
	}
	f.Fuzz(func(t *testing.T, havipID, vip, iface, ins1, eni1, ip1, ins2, eni2, ip2 string, extra uint8) {
		members := []keepalived.Member{{InstanceID: ins1, NetworkInterfaceID: eni1, IP: addr(ip1)}, {InstanceID: ins2, NetworkInterfaceID: eni2, IP: addr(ip2)}}
		for i := range int(extra % 10) { // up to 11 servers: one too many
			members = append(members, keepalived.Member{
				InstanceID: fmt.Sprintf("ins-zzzzzz%02d", i), NetworkInterfaceID: fmt.Sprintf("eni-zzzzzz%02d", i), IP: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}),
			})
		}
		v := addr(vip)
		configs, err := keepalived.Render(havipID, v, iface, members)
		if err != nil {
			if !errors.Is(err, keepalived.ErrInvalid) {
				t.Fatalf("Render refused with %v, which does not wrap ErrInvalid", err)
			}
			return
		}
		if iface == "" {
			iface = "eth0"
		}
		if !linuxName(iface) {
			t.Fatalf("Render accepted the interface %q, which Linux refuses", iface)
		}
		if len(configs) != len(members) {
			t.Fatalf("%d configurations for %d servers", len(configs), len(members))
		}
		for i, c := range configs {
			got, err := parse(c.Text)
			if err != nil {
				t.Fatalf("configuration %d does not parse: %v\n%s", i, err, c.Text)
			}
			if diff := cmp.Diff(expected(havipID, v, iface, members, i), got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("configuration %d (-want +got):\n%s\n%s", i, diff, c.Text)
			}
			if c.Priority != uint32(100-10*i) || c.Member != members[i] {
				t.Errorf("configuration %d is for %v at priority %d", i, c.Member, c.Priority)
			}
		}
	})
}
