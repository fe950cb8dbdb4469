// Package validate checks the shape of request fields and names what is wrong with them.
package validate

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/ids"
)

// MaxNameLen is the longest name a resource may have, in characters.
const MaxNameLen = 60

// Name checks a required resource name: 1 to 60 characters, at least one visible, none of them
// a control or format character (see OptionalName).
func Name(field, v string) error {
	if strings.IndexFunc(v, visible) < 0 {
		return apierr.New(apierr.ReasonEmpty, "%s must not be empty", field)
	}
	return OptionalName(field, v)
}

// visible reports whether r shows as a mark of its own: not a space, not a control or format character.
func visible(r rune) bool { return unicode.IsGraphic(r) && !unicode.IsSpace(r) }

// OptionalName checks a name that may be empty: valid UTF-8, at most 60 characters, and no
// character that is not text: no control character (C0, DEL, C1), no line or paragraph
// separator, and no format character (bidi embeddings, overrides, isolates and marks,
// zero-width space, word joiner, byte order mark, soft hyphen, tag characters), since these
// reorder, hide or break the text where a name is shown (consoles, logs, generated configs).
// The zero-width non-joiner and joiner are the exception: Persian, Indic scripts and emoji
// sequences need them to spell words.
func OptionalName(field, v string) error {
	if !utf8.ValidString(v) {
		return apierr.New(apierr.ReasonMalformed, "%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(v); n > MaxNameLen {
		return apierr.New(apierr.ReasonTooLong, "%s is %d characters; at most %d", field, n, MaxNameLen)
	}
	for i, r := range v {
		if forbiddenInName(r) {
			return apierr.New(apierr.ReasonMalformed, "%s contains a control or format character (U+%04X at byte %d)", field, r, i)
		}
	}
	return nil
}

// Zero-width non-joiner and joiner: format characters that some scripts need to spell words.
const (
	zwnj = '\u200c'
	zwj  = '\u200d'
)

// forbiddenInName reports whether r may not appear in a name: every control character
// (unicode.IsControl: C0, DEL, C1), the line and paragraph separators (Zl, Zp: U+2028, U+2029)
// and every format character (Cf: the bidi controls U+202A-U+202E, U+2066-U+2069, U+200E,
// U+200F, U+061C, and U+FEFF among them) except the zero-width non-joiner and joiner.
func forbiddenInName(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case unicode.In(r, unicode.Zl, unicode.Zp):
		return true
	case r == zwnj || r == zwj:
		return false
	default:
		return unicode.Is(unicode.Cf, r)
	}
}

// ID checks that v is a well-formed ID of the given kind.
func ID(field, prefix, v string) error {
	if v == "" {
		return apierr.New(apierr.ReasonEmpty, "%s is required", field)
	}
	if !ids.Valid(prefix, v) {
		return apierr.New(apierr.ReasonMalformed, "%s %q is not a valid ID: it must be %q followed by 8 lowercase letters or digits", field, v, prefix+"-")
	}
	return nil
}

// IDs checks every ID of a list.
func IDs(field, prefix string, vs []string) error {
	for _, v := range vs {
		if err := ID(field, prefix, v); err != nil {
			return err
		}
	}
	return nil
}

// IPv4 parses a required IPv4 address.
func IPv4(field, v string) (netip.Addr, error) {
	if v == "" {
		return netip.Addr{}, apierr.New(apierr.ReasonEmpty, "%s is required", field)
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, apierr.New(apierr.ReasonMalformed, "%s %q is not an IP address", field, v)
	}
	if !a.Is4() {
		return netip.Addr{}, apierr.New(apierr.ReasonNotIPv4, "%s %q is not an IPv4 address", field, v)
	}
	return a, nil
}

// OptionalIPv4 parses an IPv4 address that may be empty (the zero Addr then).
func OptionalIPv4(field, v string) (netip.Addr, error) {
	if v == "" {
		return netip.Addr{}, nil
	}
	return IPv4(field, v)
}

// CIDR parses an IPv4 block in canonical form with a mask between minBits and maxBits.
func CIDR(field, v string, minBits, maxBits int) (netip.Prefix, error) {
	if v == "" {
		return netip.Prefix{}, apierr.New(apierr.ReasonEmpty, "%s is required", field)
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, apierr.New(apierr.ReasonMalformed, "%s %q is not a CIDR block", field, v)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, apierr.New(apierr.ReasonNotIPv4, "%s %q is not an IPv4 block", field, v)
	}
	if p.Masked() != p {
		return netip.Prefix{}, apierr.New(apierr.ReasonMalformed, "%s %q has host bits set; the block is %s", field, v, p.Masked())
	}
	if p.Bits() < minBits || p.Bits() > maxBits {
		return netip.Prefix{}, apierr.New(apierr.ReasonRange, "%s %q must be /%d to /%d", field, v, minBits, maxBits)
	}
	return p, nil
}

var privateBlocks = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

// Private checks that an IPv4 block lies inside one of the RFC 1918 private blocks.
func Private(field string, p netip.Prefix) error {
	for _, b := range privateBlocks {
		if Contains(b, p) {
			return nil
		}
	}
	return apierr.New(apierr.ReasonCidrNotPrivate, "%s %s is not inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16", field, p)
}

// Contains reports whether block outer contains block inner.
func Contains(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}
