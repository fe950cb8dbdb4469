package broker

import (
	"testing"
	"time"
)

// TestBudget: a burst, then the sustained rate, never more.
func TestBudget(t *testing.T) {
	now := time.Unix(1000, 0)
	b := &budget{tokens: rejectionBurst, at: now}
	n := 0
	for b.take(now) {
		n++
	}
	if n != int(rejectionBurst) {
		t.Fatalf("burst of %d, want %v", n, rejectionBurst)
	}
	n = 0
	for range 100 { // ten seconds in steps of 0.1s
		now = now.Add(100 * time.Millisecond)
		for b.take(now) {
			n++
		}
	}
	if want := int(10 * rejectionRate); n < want-1 || n > want {
		t.Fatalf("%d records in 10s, want %d", n, want)
	}
}
