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
