package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/openhavip/havip/platform/retry"
)

// TestBackoffDelay: every wait is within (0, min(Cap, Base·2^(n-1))], and the waits spread (full
// jitter) rather than all landing on the bound.
func TestBackoffDelay(t *testing.T) {
	b := retry.Backoff{Base: 50 * time.Millisecond, Cap: time.Second}
	for n, bound := range map[int]time.Duration{0: 50 * time.Millisecond, 1: 50 * time.Millisecond, 2: 100 * time.Millisecond, 3: 200 * time.Millisecond, 5: 800 * time.Millisecond, 6: time.Second, 40: time.Second} {
		var low, high bool
		for range 1000 {
			d := b.Delay(n)
			if d <= 0 || d > bound {
				t.Fatalf("retry %d waits %v, want (0, %v]", n, d, bound)
			}
			low = low || d < bound/4
			high = high || d > bound*3/4
		}
		if !low || !high {
			t.Errorf("retry %d: 1000 waits all in one part of (0, %v] (low %v, high %v): no jitter", n, bound, low, high)
		}
	}
}

// TestBackoffWaitBoundedByContext: Wait refuses at once a wait past ctx's deadline, stops
// waiting when ctx is canceled, and waits when it has the time.
func TestBackoffWaitBoundedByContext(t *testing.T) {
	hour := retry.Backoff{Base: time.Hour, Cap: time.Hour}
	expired, cancel := context.WithDeadline(context.Background(), time.Now())
	defer cancel()
	start := time.Now()
	if hour.Wait(expired, 1) {
		t.Error("Wait past the deadline returned true")
	}
	canceled, cancelNow := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancelNow)
	if hour.Wait(canceled, 1) {
		t.Error("Wait returned true on a canceled context")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Wait past a deadline or after a cancel took %v", took)
	}
	roomy, cancelRoomy := context.WithTimeout(context.Background(), time.Minute)
	defer cancelRoomy()
	if !(retry.Backoff{Base: time.Millisecond, Cap: time.Millisecond}).Wait(roomy, 3) {
		t.Error("Wait with a minute left refused to wait 1 ms")
	}
}

// TestEvery: f runs every d until the context ends, and Every returns then.
func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		retry.Every(ctx, time.Millisecond, func() {
			select {
			case calls <- struct{}{}:
			default: // the test has what it needs
			}
		})
	}()
	for range 3 {
		<-calls
	}
	cancel()
	<-done
}
