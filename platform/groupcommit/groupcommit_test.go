package groupcommit_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/openhavip/havip/platform/groupcommit"
)

func TestAddStartsRunners(t *testing.T) {
	t.Parallel()
	var q groupcommit.Queue[int]
	starts := 0
	for i := range 100 {
		if q.Add(i) {
			starts++
		}
	}
	// The first call starts a runner; later ones only when MinSecondBatch wait, up to MaxInflight.
	if starts != groupcommit.MaxInflight || q.Running() != groupcommit.MaxInflight {
		t.Fatalf("started %d runners (running %d), want %d", starts, q.Running(), groupcommit.MaxInflight)
	}
	var q2 groupcommit.Queue[int]
	q2.Add(0)
	for i := 1; i < groupcommit.MinSecondBatch-1; i++ {
		if q2.Add(i) {
			t.Fatalf("call %d started a second runner with only %d waiting", i, i+1)
		}
	}
	if !q2.Add(groupcommit.MinSecondBatch - 1) {
		t.Fatal("no second runner once MinSecondBatch wait")
	}
}

// Every call is committed exactly once, in batches of at most the size take allows.
func TestRunCommitsEveryCallOnce(t *testing.T) {
	t.Parallel()
	var (
		mu        sync.Mutex
		q         groupcommit.Queue[int]
		committed = map[int]int{}
		wg        sync.WaitGroup
		exits     int
	)
	take := func(p []int) ([]int, []int) {
		n := min(len(p), 5)
		return p[:n:n], p[n:]
	}
	commit := func(b []int) {
		mu.Lock()
		defer mu.Unlock()
		if len(b) > 5 {
			t.Errorf("batch of %d", len(b))
		}
		for _, v := range b {
			committed[v]++
		}
	}
	for i := range 1000 {
		mu.Lock()
		start := q.Add(i)
		mu.Unlock()
		if start {
			wg.Add(1)
			go func() {
				defer wg.Done()
				q.Run(&mu, take, commit, func(int) { exits++ })
			}()
		}
	}
	wg.Wait()
	if len(committed) != 1000 || q.Running() != 0 || len(q.Pending()) != 0 {
		t.Fatalf("committed %d distinct, running %d, pending %d", len(committed), q.Running(), len(q.Pending()))
	}
	for v, n := range committed {
		if n != 1 {
			t.Fatalf("%d committed %d times", v, n)
		}
	}
	if exits == 0 {
		t.Fatal("exited never called")
	}
}

func ExampleQueue() {
	var (
		mu sync.Mutex
		q  groupcommit.Queue[string]
	)
	mu.Lock()
	start := q.Add("a")
	q.Add("b")
	mu.Unlock()
	if start { // run inline here; a batcher runs it in a goroutine
		q.Run(&mu, func(p []string) ([]string, []string) { return p, nil },
			func(batch []string) { fmt.Println("commit", batch) }, nil)
	}
	// Output: commit [a b]
}
