// Package groupcommit is the batching rule every batcher shares: calls that arrive while a commit is in flight go together in the next one.
package groupcommit

import "sync"

const (
	// MaxInflight is how many batches of one queue may be in flight at once.
	MaxInflight = 3
	// MinSecondBatch is how many waiting calls justify another batch in flight: small batches
	// cost more than waiting for the one in flight (8, 16, 24 and 1000 were measured; 16 won).
	MinSecondBatch = 16
)

// Queue holds a batcher's waiting calls and counts its runners. It has no lock of its own: its
// owner guards it with one lock (the one given to Run), which Add must be called under.
type Queue[T any] struct {
	pending []T
	running int
}

// Add queues t and reports whether the caller must start a runner (go q.Run(...)): when none
// runs, or when enough calls wait for another batch in flight.
func (q *Queue[T]) Add(t T) bool {
	q.pending = append(q.pending, t)
	if q.running == 0 || q.running < MaxInflight && len(q.pending) >= MinSecondBatch {
		q.running++
		return true
	}
	return false
}

// Pending returns the waiting calls (under the owner's lock).
func (q *Queue[T]) Pending() []T { return q.pending }

// SetPending replaces the waiting calls (under the owner's lock): a runner that took a batch
// leaves the rest, or puts back calls to retry.
func (q *Queue[T]) SetPending(p []T) { q.pending = p }

// Running is how many runners are active (under the owner's lock).
func (q *Queue[T]) Running() int { return q.running }

// Exit ends a runner (under the owner's lock) and returns how many still run.
func (q *Queue[T]) Exit() int {
	q.running--
	return q.running
}

// Run is a runner: under mu it takes a batch of the waiting calls with take (which returns the
// batch and the calls that stay queued), then commits the batch with mu released, until a take
// finds nothing. exited, when set, is called under mu with the number of runners left.
func (q *Queue[T]) Run(mu sync.Locker, take func(pending []T) (batch, rest []T), commit func(batch []T), exited func(running int)) {
	for {
		mu.Lock()
		batch, rest := take(q.pending)
		q.pending = rest
		if len(batch) == 0 {
			n := q.Exit()
			if exited != nil {
				exited(n)
			}
			mu.Unlock()
			return
		}
		mu.Unlock()
		commit(batch)
	}
}
