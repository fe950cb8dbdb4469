package txnbatch

import (
	"fmt"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// newCall makes a queued call the way Commit does, without committing it.
func newCall(t *testing.T, txn Txn) *call {
	t.Helper()
	c, err := prepare(txn)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTakeCountsSharedComparisonsOnce: calls that share a comparison (a leader's fence) fill a
// batch by their own comparisons, so twice as many fit as when each counted it again, and the
// batch's transaction sends the shared one once; a call writing a key the batch writes waits
// for the next batch, and one too large alone still goes.
func TestTakeCountsSharedComparisonsOnce(t *testing.T) {
	fence := clientv3.Compare(clientv3.CreateRevision("/leader"), "=", 7)
	var pending []*call
	for i := range 200 {
		key := fmt.Sprintf("/k/%d", i)
		pending = append(pending, newCall(t, Txn{
			Cmps: []clientv3.Cmp{fence, clientv3.Compare(clientv3.ModRevision(key), "=", 0)},
			Ops:  []clientv3.Op{clientv3.OpPut(key, "v")},
		}))
	}
	// The same fence with another revision is another comparison.
	other := newCall(t, Txn{Cmps: []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision("/leader"), "=", 8)}})
	again := newCall(t, Txn{Ops: []clientv3.Op{clientv3.OpPut("/k/0", "w")}}) // writes a key of the batch's
	pending = append([]*call{pending[0], again, other}, pending[1:]...)
	batch, keep := take(pending)
	// 120 distinct comparisons: the fence, the other fence, and 118 keys' own.
	if len(batch) != 119 || batch[1] != other {
		t.Fatalf("took %d calls (second %p, want %p), want 119", len(batch), batch[1], other)
	}
	if len(keep) != 200+2-119 || keep[0] != again {
		t.Fatalf("kept %d calls, first %p; want %d, first %p", len(keep), keep[0], 200+2-119, again)
	}
	// The batch's transaction sends what take counted: 120 comparisons, and one put per call
	// but the other fence's (it writes nothing).
	if cmps, ops := combine(batch); len(cmps) != maxOps || len(ops) != 118 {
		t.Fatalf("the batch sends %d comparisons and %d operations, want %d and 118", len(cmps), len(ops), maxOps)
	}
	var huge Txn
	for i := range maxOps + 1 {
		huge.Ops = append(huge.Ops, clientv3.OpPut(fmt.Sprintf("/h/%d", i), "v"))
	}
	if batch, _ := take([]*call{newCall(t, huge)}); len(batch) != 1 {
		t.Fatalf("a call too large alone was not taken: %d", len(batch))
	}
}

// TestTakeLooksAtMaxScanCalls: behind a queue of calls that clash with the first, take looks
// no further than maxScan calls (a call that would fit after them waits), and what it leaves
// keeps its order.
func TestTakeLooksAtMaxScanCalls(t *testing.T) {
	put := func(key string) *call { return newCall(t, Txn{Ops: []clientv3.Op{clientv3.OpPut(key, "v")}}) }
	pending := []*call{put("/same")}
	for range maxScan + 10 {
		pending = append(pending, put("/same"))
	}
	pending = append(pending, put("/other"))
	batch, keep := take(pending)
	if len(batch) != 1 || batch[0] != pending[0] {
		t.Fatalf("took %d calls, want the first alone", len(batch))
	}
	if len(keep) != len(pending)-1 {
		t.Fatalf("kept %d calls, want %d", len(keep), len(pending)-1)
	}
	for i, c := range keep {
		if c != pending[i+1] {
			t.Fatalf("kept call %d is not the queue's call %d: the order changed", i, i+1)
		}
	}
	// Within maxScan, a call that fits is taken past the clashing ones.
	batch, _ = take(append(pending[:3:3], put("/other")))
	if len(batch) != 2 {
		t.Fatalf("took %d calls, want 2 (the first and /other)", len(batch))
	}
}

// TestTakeStopsAtACallThatDoesNotFit: a call too large for what is left of the batch ends it;
// the smaller calls behind it wait with it, in order (it goes first in the next batch).
func TestTakeStopsAtACallThatDoesNotFit(t *testing.T) {
	puts := func(prefix string, n int) *call {
		var txn Txn
		for i := range n {
			txn.Ops = append(txn.Ops, clientv3.OpPut(fmt.Sprintf("%s/%d", prefix, i), "v"))
		}
		return newCall(t, txn)
	}
	first, large, small := puts("/a", 100), puts("/b", 30), puts("/c", 1)
	batch, keep := take([]*call{first, large, small})
	if len(batch) != 1 || batch[0] != first {
		t.Fatalf("took %d calls, want the first alone", len(batch))
	}
	if len(keep) != 2 || keep[0] != large || keep[1] != small {
		t.Fatalf("kept %d calls, want the large one, then the small one", len(keep))
	}
}
