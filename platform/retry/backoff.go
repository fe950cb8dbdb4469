package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff with full jitter: the wait before retry n (from 1) is
// uniform in (0, min(Cap, Base·2^(n-1))], so that clients that failed together do not come back
// together (AWS's "Exponential Backoff And Jitter", gRPC's retry policy).
type Backoff struct {
	// Base is the bound of the first wait.
	Base time.Duration
	// Cap bounds every wait.
	Cap time.Duration
}

// DefaultBackoff is the backoff of calls to the platform's services and of the agents' calls to
// the broker: 50 ms, doubling, capped at 1 s.
var DefaultBackoff = Backoff{Base: 50 * time.Millisecond, Cap: time.Second}

// Delay returns the wait before retry n (n ≥ 1; smaller n is taken as 1).
func (b Backoff) Delay(n int) time.Duration {
	return rand.N(b.bound(n)) + 1 // (0, bound]: never zero, so a retry always yields
}

// bound is min(Cap, Base·2^(n-1)), at least 1 ns.
func (b Backoff) bound(n int) time.Duration {
	d := max(b.Base, 1)
	for i := 1; i < n && d < b.Cap; i++ {
		d *= 2
	}
	if b.Cap > 0 && d > b.Cap {
		d = b.Cap
	}
	return d
}

// Wait sleeps before retry n and reports whether the caller should retry: false, without
// sleeping, when ctx would end first (a retry after ctx's deadline could only fail), and false
// when ctx ends during the wait.
func (b Backoff) Wait(ctx context.Context, n int) bool {
	d := b.Delay(n)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Every calls f every d until ctx ends: the steady retry of a state kept in step with another
// (routes, a packet filter) after a change was refused.
func Every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
