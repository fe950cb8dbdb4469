package apikey

import (
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	a, b := New(), New()
	if a == b || !strings.HasPrefix(a, "havip_") || len(a) != len("havip_")+32 {
		t.Fatalf("keys %q %q", a, b)
	}
	file := "# keys\n\n" + Line("acct-a", a) + Line("acct-b", b)
	if strings.Contains(file, a) {
		t.Fatal("the keys file holds a key in clear")
	}
	k, err := Parse(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if acct, ok := k.Account(a); !ok || acct != "acct-a" {
		t.Errorf("key a → %q %v", acct, ok)
	}
	if acct, ok := k.Account(b); !ok || acct != "acct-b" {
		t.Errorf("key b → %q %v", acct, ok)
	}
	for _, bad := range []string{"", "havip_x", a + " ", strings.ToUpper(a)} {
		if _, ok := k.Account(bad); ok {
			t.Errorf("key %q accepted", bad)
		}
	}
	for _, bad := range []string{"acct\n", "acct sha1:00\n", "acct sha256:zz\n", "acct sha256:00\n", "a b c\n"} {
		if _, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
