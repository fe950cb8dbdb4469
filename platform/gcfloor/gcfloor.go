// Package gcfloor sets a floor under the heap size the garbage collector paces a process by.
package gcfloor

import (
	"os"
	"sync"
)

// Size is the floor that the daemons built on platform/service and havip-suite set: a daemon
// whose live heap is a few megabytes then collects less often under load (the README's
// "Create CPU" has what it saved), and may hold up to about Size more heap between
// collections.
const Size = 8 << 20

var (
	once sync.Once
	// floor is counted as live by the collector and never written.
	floor []byte
)

// Set makes the collector count size more bytes as live, once per process: a heap is then
// collected when it has grown by its live part plus size (GOGC=100), instead of by its live
// part alone. A process with a small live heap and a high allocation rate (a service under
// load) then collects far less often: each collection has costs that do not shrink with the
// heap (scanning every goroutine's stack, and shrinking the idle ones, which their next calls
// grow back by copying), while a large heap is paced nearly as before. Call it at the start:
// the floor is allocated from pages the process has not used yet, which the OS backs with
// memory only once written, and it is never written (a test program's RSS grew 0.3 MB with 8
// MiB). It counts against a GOMEMLIMIT. When GOGC is set in the environment, the operator has
// chosen the pacing: Set does nothing.
func Set(size int) {
	if os.Getenv("GOGC") != "" {
		return
	}
	once.Do(func() { floor = make([]byte, size) })
}
