// Package ids makes and checks resource IDs shaped like Tencent's: a prefix, a dash, 8 lowercase alphanumerics.
package ids

import (
	"crypto/rand"
	"strings"
)

// Prefixes of the resource kinds.
const (
	Vpc              = "vpc"
	Subnet           = "subnet"
	Instance         = "ins"
	NetworkInterface = "eni"
	HaVip            = "havip"
	Address          = "eip"
)

const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// New returns a fresh random ID of the given kind, for example "vpc-3k9x0abq".
func New(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 0, len(prefix)+9)
	out = append(out, prefix...)
	out = append(out, '-')
	for _, c := range b {
		out = append(out, alphabet[int(c)%len(alphabet)])
	}
	return string(out)
}

// Valid reports whether id is a well-formed ID of the given kind.
func Valid(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix+"-")
	if !ok || len(rest) != 8 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if !strings.ContainsRune(alphabet, rune(rest[i])) {
			return false
		}
	}
	return true
}

// Space is how many distinct IDs a kind has: 36^8.
const Space = 2821109907456

// FromNumber returns the ID of the given kind numbered n (0 ≤ n < Space) under seed. For one
// seed, distinct numbers give distinct IDs, so a counter yields IDs that are unique without a
// check; the numbers are scrambled by a Feistel permutation keyed by seed, so consecutive ones
// do not look alike and two installations (two seeds) do not share a sequence.
func FromNumber(prefix string, n, seed uint64) string {
	if n >= Space {
		panic("ids: number out of range")
	}
	keys := roundKeys(seed)
	// A permutation of [0, 2^42), walked until it lands below Space: a permutation of [0, Space).
	for {
		n = feistel(n, keys)
		if n < Space {
			break
		}
	}
	out := make([]byte, len(prefix)+9)
	copy(out, prefix)
	out[len(prefix)] = '-'
	for i := len(out) - 1; i > len(prefix); i-- {
		out[i] = alphabet[n%36]
		n /= 36
	}
	return string(out)
}

// The permutation works on two halves of 21 bits, in four rounds.
const (
	half     = 21
	halfMask = 1<<half - 1
)

// roundKeys derives the permutation's round keys from a seed.
func roundKeys(seed uint64) [4]uint64 {
	var k [4]uint64
	for i := range k {
		k[i] = mix(seed + uint64(i+1)*0x9e3779b97f4a7c15)
	}
	return k
}

// feistel is a bijection of 42-bit numbers.
func feistel(n uint64, keys [4]uint64) uint64 {
	l, r := n>>half, n&halfMask
	for _, k := range keys {
		l, r = r, l^(mix(r^k)&halfMask)
	}
	return l<<half | r
}

// mix is SplitMix64's finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Splits returns keyPrefix followed by the start of an ID of kind with each first character
// after its dash: 36 keys that cut a range of keys keyPrefix+ID into 36 ranges holding about as
// many IDs each, after one (before the first) that holds none (kvcache.Cache.Split loads such
// ranges at once).
func Splits(keyPrefix, kind string) []string {
	out := make([]string, len(alphabet))
	for i := range len(alphabet) {
		out[i] = keyPrefix + kind + "-" + alphabet[i:i+1]
	}
	return out
}
