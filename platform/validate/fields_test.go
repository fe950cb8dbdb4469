package validate_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/validate"
)

// checkReason fails t unless err carries reason ("" meaning no error).
func checkReason(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := apierr.Reason(err); got != want || (err == nil) != (want == "") {
		t.Errorf("%s: %v (reason %q), want reason %q", what, err, got, want)
	}
}

// TestNameLengthAndEncoding: Name and OptionalName count characters, not bytes, up to 60 of
// them, and refuse what is not UTF-8 (validate_test.go covers which characters are refused).
func TestNameLengthAndEncoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		v            string
		want         string // the reason for Name; "" when accepted
		wantOptional string // the reason for OptionalName; "" when accepted
	}{
		{name: "one character", v: "a"},
		{name: "60 ASCII characters", v: strings.Repeat("a", 60)},
		{name: "60 two-byte characters", v: strings.Repeat("é", 60)},
		{name: "60 four-byte characters", v: strings.Repeat("🚀", 60)},
		{name: "61 ASCII characters", v: strings.Repeat("a", 61), want: apierr.ReasonTooLong, wantOptional: apierr.ReasonTooLong},
		{name: "61 two-byte characters", v: strings.Repeat("é", 61), want: apierr.ReasonTooLong, wantOptional: apierr.ReasonTooLong},
		{name: "61 four-byte characters", v: strings.Repeat("🚀", 61), want: apierr.ReasonTooLong, wantOptional: apierr.ReasonTooLong},
		{name: "truncated UTF-8", v: "caf\xc3", want: apierr.ReasonMalformed, wantOptional: apierr.ReasonMalformed},
		{name: "UTF-16 surrogate encoded in UTF-8", v: "a\xed\xa0\x80b", want: apierr.ReasonMalformed, wantOptional: apierr.ReasonMalformed},
		{name: "blank controls", v: "\t\n", want: apierr.ReasonEmpty, wantOptional: apierr.ReasonMalformed},
		{name: "unit separator", v: "a\x1fb", want: apierr.ReasonMalformed, wantOptional: apierr.ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkReason(t, "Name", validate.Name("VpcName", tc.v), tc.want)
			checkReason(t, "OptionalName", validate.OptionalName("VpcName", tc.v), tc.wantOptional)
		})
	}
}

// TestID: an ID is its kind's prefix, a dash and 8 lowercase letters or digits. (The wording of
// the message is not checked here: only the reason.)
func TestID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		prefix string
		v      string
		want   string
	}{
		{name: "fresh ID", prefix: ids.Vpc, v: ids.New(ids.Vpc)},
		{name: "digits and letters", prefix: ids.Subnet, v: "subnet-0a9z8y7x"},
		{name: "all digits", prefix: ids.Instance, v: "ins-12345678"},
		{name: "empty", prefix: ids.Vpc, v: "", want: apierr.ReasonEmpty},
		{name: "other kind", prefix: ids.Vpc, v: "subnet-0a9z8y7x", want: apierr.ReasonMalformed},
		{name: "prefix of a longer kind", prefix: ids.HaVip, v: "havipx-0a9z8y7x", want: apierr.ReasonMalformed},
		{name: "uppercase", prefix: ids.Vpc, v: "vpc-0A9Z8Y7X", want: apierr.ReasonMalformed},
		{name: "uppercase prefix", prefix: ids.Vpc, v: "VPC-0a9z8y7x", want: apierr.ReasonMalformed},
		{name: "7 characters", prefix: ids.Vpc, v: "vpc-0a9z8y7", want: apierr.ReasonMalformed},
		{name: "9 characters", prefix: ids.Vpc, v: "vpc-0a9z8y7xw", want: apierr.ReasonMalformed},
		{name: "no dash", prefix: ids.Vpc, v: "vpc0a9z8y7xw", want: apierr.ReasonMalformed},
		{name: "prefix only", prefix: ids.Vpc, v: "vpc-", want: apierr.ReasonMalformed},
		{name: "underscore", prefix: ids.Vpc, v: "vpc-0a9z_y7x", want: apierr.ReasonMalformed},
		{name: "trailing space", prefix: ids.Vpc, v: "vpc-0a9z8y7x ", want: apierr.ReasonMalformed},
		{name: "non-ASCII letter", prefix: ids.Vpc, v: "vpc-0a9z8yé", want: apierr.ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkReason(t, "ID", validate.ID("VpcId", tc.prefix, tc.v), tc.want)
		})
	}
}

// TestIDs: a list is valid when every ID of it is; the first bad one decides the error.
func TestIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		vs   []string
		want string
	}{
		{name: "none", vs: nil},
		{name: "all good", vs: []string{"eni-00000000", "eni-zzzzzzzz"}},
		{name: "bad one last", vs: []string{"eni-00000000", "eni-0000000"}, want: apierr.ReasonMalformed},
		{name: "empty one first", vs: []string{"", "eni-0000000"}, want: apierr.ReasonEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkReason(t, "IDs", validate.IDs("NetworkInterfaceIds", ids.NetworkInterface, tc.vs), tc.want)
		})
	}
}

// TestIPv4: an address must be dotted-quad IPv4, without leading zeros, zone or mask; IPv6
// (including IPv4-mapped IPv6) is refused as not IPv4. OptionalIPv4 accepts the empty string
// as the zero Addr.
func TestIPv4(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    string
		want string
	}{
		{name: "private", v: "10.0.0.1"},
		{name: "zero", v: "0.0.0.0"},
		{name: "broadcast", v: "255.255.255.255"},
		{name: "empty", v: "", want: apierr.ReasonEmpty},
		{name: "octet too large", v: "10.0.0.256", want: apierr.ReasonMalformed},
		{name: "three octets", v: "10.0.1", want: apierr.ReasonMalformed},
		{name: "leading zero", v: "010.0.0.1", want: apierr.ReasonMalformed},
		{name: "hexadecimal", v: "0x0a.0.0.1", want: apierr.ReasonMalformed},
		{name: "leading space", v: " 10.0.0.1", want: apierr.ReasonMalformed},
		{name: "with a mask", v: "10.0.0.1/24", want: apierr.ReasonMalformed},
		{name: "with a zone", v: "10.0.0.1%eth0", want: apierr.ReasonMalformed},
		{name: "host name", v: "localhost", want: apierr.ReasonMalformed},
		{name: "IPv6", v: "fd00::1", want: apierr.ReasonNotIPv4},
		{name: "IPv4-mapped IPv6", v: "::ffff:10.0.0.1", want: apierr.ReasonNotIPv4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := validate.IPv4("PrivateIpAddress", tc.v)
			checkReason(t, "IPv4", err, tc.want)
			if err == nil && a != netip.MustParseAddr(tc.v) {
				t.Errorf("IPv4(%q) = %s", tc.v, a)
			}
			if err != nil && a.IsValid() {
				t.Errorf("IPv4(%q) failed but returned %s", tc.v, a)
			}
			oa, oerr := validate.OptionalIPv4("PrivateIpAddress", tc.v)
			if tc.v == "" {
				if oerr != nil || oa.IsValid() {
					t.Errorf("OptionalIPv4(\"\") = %s, %v; want the zero Addr", oa, oerr)
				}
				return
			}
			checkReason(t, "OptionalIPv4", oerr, tc.want)
			if oa != a {
				t.Errorf("OptionalIPv4(%q) = %s, IPv4 = %s", tc.v, oa, a)
			}
		})
	}
}

// TestCIDR: a block must be IPv4 in canonical form (no host bits set) with a mask length
// within bounds, both bounds included.
func TestCIDR(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		v       string
		minBits int
		maxBits int
		want    string
	}{
		{name: "VPC block", v: "10.0.0.0/16", minBits: 12, maxBits: 28},
		{name: "lower bound", v: "172.16.0.0/12", minBits: 12, maxBits: 28},
		{name: "upper bound", v: "192.168.0.16/28", minBits: 12, maxBits: 28},
		{name: "below the lower bound", v: "10.0.0.0/11", minBits: 12, maxBits: 28, want: apierr.ReasonRange},
		{name: "above the upper bound", v: "10.0.0.0/29", minBits: 12, maxBits: 28, want: apierr.ReasonRange},
		{name: "single address block", v: "10.0.0.1/32", minBits: 16, maxBits: 29, want: apierr.ReasonRange},
		{name: "empty", v: "", minBits: 16, maxBits: 29, want: apierr.ReasonEmpty},
		{name: "host bits set", v: "10.0.0.1/16", minBits: 16, maxBits: 29, want: apierr.ReasonMalformed},
		{name: "host bits set out of range", v: "10.0.0.1/8", minBits: 16, maxBits: 29, want: apierr.ReasonMalformed},
		{name: "no mask", v: "10.0.0.0", minBits: 16, maxBits: 29, want: apierr.ReasonMalformed},
		{name: "mask over 32", v: "10.0.0.0/33", minBits: 16, maxBits: 29, want: apierr.ReasonMalformed},
		{name: "negative mask", v: "10.0.0.0/-1", minBits: 16, maxBits: 29, want: apierr.ReasonMalformed},
		{name: "mask with a leading zero", v: "10.0.0.0/016", minBits: 16, maxBits: 29, want: apierr.ReasonMalformed},
		{name: "dotted mask", v: "10.0.0.0/255.255.0.0", minBits: 16, maxBits: 29, want: apierr.ReasonMalformed},
		{name: "IPv6", v: "fd00::/64", minBits: 16, maxBits: 29, want: apierr.ReasonNotIPv4},
		{name: "IPv4-mapped IPv6", v: "::ffff:10.0.0.0/112", minBits: 16, maxBits: 29, want: apierr.ReasonNotIPv4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := validate.CIDR("CidrBlock", tc.v, tc.minBits, tc.maxBits)
			checkReason(t, "CIDR", err, tc.want)
			if err == nil && p != netip.MustParsePrefix(tc.v) {
				t.Errorf("CIDR(%q) = %s", tc.v, p)
			}
			if err != nil && p.IsValid() {
				t.Errorf("CIDR(%q) failed but returned %s", tc.v, p)
			}
		})
	}
}

// TestPrivate: a block must lie wholly inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16.
func TestPrivate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    string
		want string
	}{
		{name: "10/8 itself", v: "10.0.0.0/8"},
		{name: "end of 10/8", v: "10.255.255.248/29"},
		{name: "172.16/12 itself", v: "172.16.0.0/12"},
		{name: "end of 172.16/12", v: "172.31.255.0/24"},
		{name: "192.168/16 itself", v: "192.168.0.0/16"},
		{name: "inside 192.168/16", v: "192.168.7.0/24"},
		{name: "just before 10/8", v: "9.255.255.0/24", want: apierr.ReasonCidrNotPrivate},
		{name: "just after 10/8", v: "11.0.0.0/16", want: apierr.ReasonCidrNotPrivate},
		{name: "larger than 10/8", v: "10.0.0.0/7", want: apierr.ReasonCidrNotPrivate},
		{name: "just before 172.16/12", v: "172.15.0.0/16", want: apierr.ReasonCidrNotPrivate},
		{name: "just after 172.16/12", v: "172.32.0.0/16", want: apierr.ReasonCidrNotPrivate},
		{name: "larger than 172.16/12", v: "172.16.0.0/11", want: apierr.ReasonCidrNotPrivate},
		{name: "larger than 192.168/16", v: "192.168.0.0/15", want: apierr.ReasonCidrNotPrivate},
		{name: "just after 192.168/16", v: "192.169.0.0/16", want: apierr.ReasonCidrNotPrivate},
		{name: "carrier-grade NAT", v: "100.64.0.0/10", want: apierr.ReasonCidrNotPrivate},
		{name: "public", v: "8.8.8.0/24", want: apierr.ReasonCidrNotPrivate},
		{name: "everything", v: "0.0.0.0/0", want: apierr.ReasonCidrNotPrivate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkReason(t, "Private", validate.Private("CidrBlock", netip.MustParsePrefix(tc.v)), tc.want)
		})
	}
}

// TestContains: a block contains another when it is no longer and holds its first address:
// itself, its halves and its last address, not its neighbours nor a block it lies in.
func TestContains(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		outer, inner string
		want         bool
	}{
		{name: "itself", outer: "10.0.0.0/16", inner: "10.0.0.0/16", want: true},
		{name: "first half", outer: "10.0.0.0/16", inner: "10.0.0.0/17", want: true},
		{name: "second half", outer: "10.0.0.0/16", inner: "10.0.128.0/17", want: true},
		{name: "last address", outer: "10.0.0.0/16", inner: "10.0.255.255/32", want: true},
		{name: "everything contains all", outer: "0.0.0.0/0", inner: "203.0.113.0/24", want: true},
		{name: "the block it lies in", outer: "10.0.0.0/17", inner: "10.0.0.0/16", want: false},
		{name: "next block", outer: "10.0.0.0/16", inner: "10.1.0.0/16", want: false},
		{name: "previous address", outer: "10.0.0.0/16", inner: "9.255.255.255/32", want: false},
		{name: "IPv6 inside IPv4", outer: "10.0.0.0/8", inner: "::ffff:10.0.0.0/120", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := validate.Contains(netip.MustParsePrefix(tc.outer), netip.MustParsePrefix(tc.inner)); got != tc.want {
				t.Errorf("Contains(%s, %s) = %v, want %v", tc.outer, tc.inner, got, tc.want)
			}
		})
	}
}
