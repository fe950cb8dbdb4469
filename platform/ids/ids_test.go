package ids

import "testing"

// TestFromNumber: numbers map to well-formed IDs, distinct numbers to distinct IDs (checked on
// the first numbers a counter hands out and on the last ones of the space), and neighbours do
// not share a prefix.
func TestFromNumber(t *testing.T) {
	seen := map[string]uint64{}
	check := func(n uint64) {
		id := FromNumber(Address, n)
		if !Valid(Address, id) {
			t.Fatalf("FromNumber(%d) = %q, not a valid ID", n, id)
		}
		if m, dup := seen[id]; dup {
			t.Fatalf("FromNumber(%d) = FromNumber(%d) = %q", n, m, id)
		}
		seen[id] = n
	}
	for n := range uint64(200000) {
		check(n)
	}
	for n := uint64(Space - 20000); n < Space; n++ {
		check(n)
	}
	if a, b := FromNumber(Address, 1), FromNumber(Address, 2); a[:6] == b[:6] {
		t.Errorf("neighbours look alike: %s %s", a, b)
	}
}

// TestFeistelIsBijective: the permutation under FromNumber has an inverse on sampled inputs —
// running the rounds backwards recovers every input.
func TestFeistelIsBijective(t *testing.T) {
	inverse := func(n uint64) uint64 {
		l, r := n>>half, n&halfMask
		for i := len(roundKeys) - 1; i >= 0; i-- {
			l, r = r^(mix(l^roundKeys[i])&halfMask), l
		}
		return l<<half | r
	}
	for n := uint64(0); n < 1<<42; n += 1<<42/100003 + 7 {
		if got := inverse(feistel(n)); got != n {
			t.Fatalf("inverse(feistel(%d)) = %d", n, got)
		}
	}
}
