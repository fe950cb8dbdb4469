package ids

import "testing"

// TestFromNumber: numbers map to well-formed IDs, distinct numbers to distinct IDs (checked on
// the first numbers a counter hands out and on the last ones of the space), neighbours do not
// share a prefix, and another seed gives another sequence.
func TestFromNumber(t *testing.T) {
	const seed = 42
	seen := map[string]uint64{}
	check := func(n uint64) {
		id := FromNumber(Address, n, seed)
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
	if a, b := FromNumber(Address, 1, seed), FromNumber(Address, 2, seed); a[:6] == b[:6] {
		t.Errorf("neighbours look alike: %s %s", a, b)
	}
	if a, b := FromNumber(Address, 0, seed), FromNumber(Address, 0, seed+1); a == b {
		t.Errorf("seeds %d and %d both start with %s", seed, seed+1, a)
	}
}

// TestFeistelIsBijective: the permutation under FromNumber has an inverse on sampled inputs —
// running the rounds backwards recovers every input.
func TestFeistelIsBijective(t *testing.T) {
	keys := roundKeys(7)
	inverse := func(n uint64) uint64 {
		l, r := n>>half, n&halfMask
		for i := len(keys) - 1; i >= 0; i-- {
			l, r = r^(mix(l^keys[i])&halfMask), l
		}
		return l<<half | r
	}
	for n := uint64(0); n < 1<<42; n += 1<<42/100003 + 7 {
		if got := inverse(feistel(n, keys)); got != n {
			t.Fatalf("inverse(feistel(%d)) = %d", n, got)
		}
	}
}
