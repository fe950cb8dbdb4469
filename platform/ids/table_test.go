package ids

import (
	"fmt"
	"strings"
	"testing"
)

// TestValid: an ID is exactly its kind's prefix, a dash and 8 characters of [a-z0-9].
func TestValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		prefix string
		id     string
		want   bool
	}{
		{name: "letters and digits", prefix: Vpc, id: "vpc-0a9z8y7x", want: true},
		{name: "all letters", prefix: Subnet, id: "subnet-abcdefgh", want: true},
		{name: "all digits", prefix: Instance, id: "ins-01234567", want: true},
		{name: "first and last of the alphabet", prefix: Address, id: "eip-a9a9a9a9", want: true},
		{name: "empty prefix", prefix: "", id: "-0a9z8y7x", want: true},
		{name: "empty", prefix: Vpc, id: "", want: false},
		{name: "other kind", prefix: Vpc, id: "eni-0a9z8y7x", want: false},
		{name: "kind that starts alike", prefix: HaVip, id: "havipx-0a9z8y7", want: false},
		{name: "kind that is a prefix of the given one", prefix: "ha", id: "havip-0a9z8y7x", want: false},
		{name: "7 characters", prefix: Vpc, id: "vpc-0a9z8y7", want: false},
		{name: "9 characters", prefix: Vpc, id: "vpc-0a9z8y7xw", want: false},
		{name: "no dash", prefix: Vpc, id: "vpc0a9z8y7x", want: false},
		{name: "two dashes", prefix: Vpc, id: "vpc--a9z8y7x", want: false},
		{name: "uppercase", prefix: Vpc, id: "vpc-0A9Z8Y7X", want: false},
		{name: "uppercase prefix", prefix: Vpc, id: "VPC-0a9z8y7x", want: false},
		{name: "underscore", prefix: Vpc, id: "vpc-0a9z_y7x", want: false},
		{name: "space", prefix: Vpc, id: "vpc-0a9z y7x", want: false},
		{name: "non-ASCII letters in 8 bytes", prefix: Vpc, id: "vpc-éé0a9z", want: false},
		{name: "NUL", prefix: Vpc, id: "vpc-0a9z\x00y7x", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Valid(tc.prefix, tc.id); got != tc.want {
				t.Errorf("Valid(%q, %q) = %v, want %v", tc.prefix, tc.id, got, tc.want)
			}
		})
	}
}

// TestNew: fresh IDs of every kind are valid IDs of that kind, distinct, and use the whole
// alphabet at every position (1,000 IDs miss a given character at a given position with
// probability (35/36)^1000, about 10^-12).
func TestNew(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{Vpc, Subnet, Instance, NetworkInterface, HaVip, Address} {
		t.Run(prefix, func(t *testing.T) {
			t.Parallel()
			seen := map[string]bool{}
			var chars [8]map[byte]bool
			for i := range chars {
				chars[i] = map[byte]bool{}
			}
			for range 1000 {
				id := New(prefix)
				if !Valid(prefix, id) || len(id) != len(prefix)+9 {
					t.Fatalf("New(%q) = %q, not a valid ID", prefix, id)
				}
				if seen[id] {
					t.Fatalf("New(%q) repeated %q", prefix, id)
				}
				seen[id] = true
				for i := range 8 {
					chars[i][id[len(prefix)+1+i]] = true
				}
			}
			for i, c := range chars {
				if len(c) != len(alphabet) {
					t.Errorf("position %d: %d distinct characters, want %d", i, len(c), len(alphabet))
				}
			}
		})
	}
}

// TestFromNumberPinned: the IDs of given numbers and seeds never change. A counter in etcd
// records only how many numbers it handed out, so a different permutation in a new version
// would hand out again IDs that the old one already gave to live resources.
func TestFromNumberPinned(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix  string
		n, seed uint64
		want    string
	}{
		{prefix: "eip", n: 0, seed: 0, want: "eip-rccze6ig"},
		{prefix: "eip", n: 1, seed: 0, want: "eip-xln1lboy"},
		{prefix: "eip", n: 0, seed: 42, want: "eip-kwj8ypz5"},
		{prefix: "eip", n: 1, seed: 42, want: "eip-7ikkrcwb"},
		{prefix: "eip", n: 1023, seed: 42, want: "eip-shekwbve"},
		{prefix: "eip", n: 1024, seed: 42, want: "eip-k1vx01la"},
		{prefix: "vpc", n: Space - 1, seed: 42, want: "vpc-ah0omo9o"},
		{prefix: "havip", n: 123456789, seed: 0xdeadbeef, want: "havip-ru453bop"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %d seed %d", tc.prefix, tc.n, tc.seed), func(t *testing.T) {
			t.Parallel()
			if got := FromNumber(tc.prefix, tc.n, tc.seed); got != tc.want {
				t.Errorf("FromNumber(%q, %d, %d) = %q, want %q", tc.prefix, tc.n, tc.seed, got, tc.want)
			}
		})
	}
}

// number inverts FromNumber: it reads the ID's base-36 number and walks the permutation
// backwards until it lands below Space again.
func number(t *testing.T, prefix, id string, seed uint64) uint64 {
	t.Helper()
	rest, ok := strings.CutPrefix(id, prefix+"-")
	if !ok || len(rest) != 8 {
		t.Fatalf("%q is not a %s ID", id, prefix)
	}
	var n uint64
	for i := range len(rest) {
		n = n*36 + uint64(strings.IndexByte(alphabet, rest[i]))
	}
	keys := roundKeys(seed)
	inverse := func(n uint64) uint64 {
		l, r := n>>half, n&halfMask
		for i := len(keys) - 1; i >= 0; i-- {
			l, r = r^(mix(l^keys[i])&halfMask), l
		}
		return l<<half | r
	}
	for {
		n = inverse(n)
		if n < Space {
			return n
		}
	}
}

// TestFromNumberBijection: for several seeds, every sampled number (both ends of the space and
// numbers spread across it) is recovered from its ID, so no two numbers share an ID.
func TestFromNumberBijection(t *testing.T) {
	t.Parallel()
	samples := []uint64{0, 1, 2, 35, 36, 1023, 1024, 1 << 21, 1<<21 - 1, Space/2 - 1, Space / 2, Space - 2, Space - 1}
	for n := uint64(0); n < Space; n += Space/5003 + 11 {
		samples = append(samples, n)
	}
	for _, seed := range []uint64{0, 1, 42, 0xdeadbeef, 1<<64 - 1} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			t.Parallel()
			for _, n := range samples {
				id := FromNumber(Address, n, seed)
				if !Valid(Address, id) {
					t.Fatalf("FromNumber(%d) = %q, not a valid ID", n, id)
				}
				if back := number(t, Address, id, seed); back != n {
					t.Fatalf("FromNumber(%d) = %q, which is the ID of %d", n, id, back)
				}
			}
		})
	}
}

// TestFromNumberOutOfRange: a number past the space is a programming error and panics rather
// than wrapping onto an ID already handed out.
func TestFromNumberOutOfRange(t *testing.T) {
	t.Parallel()
	for _, n := range []uint64{Space, Space + 1, 1 << 42, 1<<64 - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Errorf("FromNumber(%d) did not panic", n)
				}
			}()
			id := FromNumber(Address, n, 42)
			t.Errorf("FromNumber(%d) = %q", n, id)
		})
	}
}

// TestSpace: Space is the number of 8-character strings of the alphabet, and fits the 42-bit
// permutation (the permutation's cycle walk needs Space ≤ 2^42).
func TestSpace(t *testing.T) {
	t.Parallel()
	want := uint64(1)
	for range 8 {
		want *= uint64(len(alphabet))
	}
	if Space != want || Space > 1<<(2*half) {
		t.Errorf("Space = %d, want %d and at most 2^%d", uint64(Space), want, 2*half)
	}
}
