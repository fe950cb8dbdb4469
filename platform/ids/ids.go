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

// FromNumber returns the ID of the given kind numbered n (0 ≤ n < Space). Distinct numbers give
// distinct IDs, so a counter yields IDs that are unique without a check; the numbers are
// scrambled (a Feistel permutation), so consecutive ones do not look alike.
func FromNumber(prefix string, n uint64) string {
	if n >= Space {
		panic("ids: number out of range")
	}
	// A permutation of [0, 2^42), walked until it lands below Space: a permutation of [0, Space).
	for {
		n = feistel(n)
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

// The permutation works on two halves of 21 bits, one round per key.
const (
	half     = 21
	halfMask = 1<<half - 1
)

var roundKeys = [...]uint64{0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9, 0x94d049bb133111eb, 0x2545f4914f6cdd1d}

// feistel is a bijection of 42-bit numbers.
func feistel(n uint64) uint64 {
	l, r := n>>half, n&halfMask
	for _, k := range roundKeys {
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
