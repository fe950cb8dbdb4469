package store

import "testing"

func TestParsePools(t *testing.T) {
	r, err := ParsePools("192.0.2.0/30, 198.51.100.7-198.51.100.9")
	if err != nil || len(r) != 2 || r[0].First.String() != "192.0.2.1" || r[0].Last.String() != "192.0.2.2" || r[1].First.String() != "198.51.100.7" || r[1].Last.String() != "198.51.100.9" {
		t.Fatalf("ParsePools: %v %v", r, err)
	}
	for _, bad := range []string{"", " , ", "192.0.2.0", "192.0.2.9-192.0.2.1", "2001:db8::/64", "192.0.2.1-x", "192.0.2.0/33"} {
		if _, err := ParsePools(bad); err == nil {
			t.Errorf("ParsePools(%q) accepted", bad)
		}
	}
}
