package store

import (
	"testing"

	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
)

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

// TestIndexID: the ID index follows puts and deletes of EIP keys, and a reload's difference
// that puts another EIP at a key (without a delete between) drops the old ID.
func TestIndexID(t *testing.T) {
	s := &Store{byID: map[string]string{}}
	item := func(key, id string) *kvcache.Item[records.Eip] {
		return &kvcache.Item[records.Eip]{Key: key, Value: records.Eip{ID: id}}
	}
	a1, b1, a2 := item("k1", "eip-aaaaaaaa"), item("k1", "eip-bbbbbbbb"), item("k2", "eip-aaaaaaaa")
	s.indexID(nil, a1, 1)
	s.indexID(a1, a1, 2) // a rename
	if s.byID["eip-aaaaaaaa"] != "k1" || len(s.byID) != 1 {
		t.Fatalf("after put: %v", s.byID)
	}
	s.indexID(a1, b1, 3) // a reload: another EIP at k1
	if _, ok := s.byID["eip-aaaaaaaa"]; ok || s.byID["eip-bbbbbbbb"] != "k1" {
		t.Fatalf("after replace: %v", s.byID)
	}
	s.indexID(nil, a2, 4)
	s.indexID(b1, nil, 5)
	if len(s.byID) != 1 || s.byID["eip-aaaaaaaa"] != "k2" {
		t.Fatalf("after delete: %v", s.byID)
	}
	s.indexID(a1, nil, 6) // a stale delete of an ID now elsewhere leaves it alone
	if s.byID["eip-aaaaaaaa"] != "k2" {
		t.Fatalf("after stale delete: %v", s.byID)
	}
}
