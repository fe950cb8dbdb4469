package gcfloor

import (
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
)

// heapGoal is the heap size at which the collector next runs, right after a collection.
func heapGoal() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestSetRaisesTheHeapGoal: after Set, the collector lets the heap grow by at least the floor
// past what is live; without GOGC in the environment only (it is the operator's choice).
func TestSetRaisesTheHeapGoal(t *testing.T) {
	if os.Getenv("GOGC") != "" {
		t.Skip("GOGC is set: Set does nothing")
	}
	const size = 64 << 20 // well past this test binary's own heap goal
	// Unless an earlier run of this test (-count) has set the floor already:
	if floor == nil {
		if before := heapGoal(); before >= size {
			t.Fatalf("heap goal %d before Set: the test needs it under %d", before, size)
		}
	}
	Set(size)
	if after := heapGoal(); after < 2*size {
		t.Fatalf("heap goal %d after Set(%d), want at least %d", after, size, 2*size)
	}
	runtime.KeepAlive(floor)
}
