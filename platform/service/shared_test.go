package service_test

import (
	"sync"
	"testing"

	"github.com/openhavip/havip/platform/service"
)

// TestSharedValue: the modules of one process asking at once get the one value made by the
// first; another key, or no Shared at all, makes its own.
func TestSharedValue(t *testing.T) {
	s := &service.Shared{}
	var made sync.Map
	mk := func() *int { p := new(int); made.Store(p, true); return p }
	got := make([]*int, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = service.SharedValue(s, "cache", mk) })
	}
	wg.Wait()
	for _, p := range got[1:] {
		if p != got[0] {
			t.Fatal("modules of one process got different values for one key")
		}
	}
	if other := service.SharedValue(s, "other", mk); other == got[0] {
		t.Fatal("another key got the same value")
	}
	if own := service.SharedValue(nil, "cache", mk); own == got[0] {
		t.Fatal("a nil Shared returned the shared value")
	}
	n := 0
	made.Range(func(any, any) bool { n++; return true })
	if n != 3 {
		t.Fatalf("%d values made, want 3 (one per key, one without Shared)", n)
	}
}
