package server

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestJudgesAtMostMaxAtOnce: reports beyond maxJudges wait for a free judge, every one runs,
// the judges are kept for the next reports, and after close a report still runs.
func TestJudgesAtMostMaxAtOnce(t *testing.T) {
	j := newJudges()
	defer j.close()
	release := make(chan struct{})
	var running, most atomic.Int64
	var done sync.WaitGroup
	started := make(chan struct{}, maxJudges+10)
	for range maxJudges + 10 {
		done.Add(1)
		go j.run(func() {
			defer done.Done()
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			started <- struct{}{}
			<-release
			running.Add(-1)
		})
	}
	for range maxJudges {
		<-started
	}
	if n := running.Load(); n != maxJudges {
		t.Fatalf("%d reports judged at once, want %d", n, maxJudges)
	}
	close(release)
	done.Wait()
	if m := most.Load(); m != maxJudges {
		t.Fatalf("at most %d at once, want %d", m, maxJudges)
	}
	j.mu.Lock()
	n := j.n
	j.mu.Unlock()
	if n != maxJudges {
		t.Fatalf("%d judges started, want %d", n, maxJudges)
	}
	j.close()
	ran := make(chan struct{})
	j.run(func() { close(ran) })
	<-ran
}

// TestVipOrder: a report waits for the report of its VIP before it, and for no other.
func TestVipOrder(t *testing.T) {
	var o vipOrder
	a1, done1 := o.next("10.0.0.1")
	a2, done2 := o.next("10.0.0.1")
	b1, doneB := o.next("10.0.0.2")
	isClosed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	if !isClosed(a1) || !isClosed(b1) {
		t.Fatal("a first report of a VIP waits")
	}
	if isClosed(a2) {
		t.Fatal("a second report of a VIP does not wait for the first")
	}
	done1()
	if !isClosed(a2) {
		t.Fatal("the first report judged, the second still waits")
	}
	done2()
	doneB()
	if len(o.last) != 0 {
		t.Fatalf("%d VIPs still chained after every report was judged", len(o.last))
	}
}
