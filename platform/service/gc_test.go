package service

import (
	"runtime/debug"
	"testing"
)

// gcPercent is the collector's current target.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestLoadingGC: the target is raised while any start of the process loads, restored once the
// last has loaded (whatever the order, each done once), and left alone when the user set GOGC.
func TestLoadingGC(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(70))
	first, second := loadingGC(), loadingGC()
	if got := gcPercent(); got != loadGCPercent {
		t.Fatalf("while loading, GOGC %d, want %d", got, loadGCPercent)
	}
	first()
	first() // a second call of one start's function changes nothing
	if got := gcPercent(); got != loadGCPercent {
		t.Fatalf("while another start loads, GOGC %d, want %d", got, loadGCPercent)
	}
	second()
	if got := gcPercent(); got != 70 {
		t.Fatalf("after the loads, GOGC %d, want 70 as before", got)
	}
	t.Setenv("GOGC", "70")
	done := loadingGC()
	if got := gcPercent(); got != 70 {
		t.Fatalf("with GOGC set, %d while loading, want it left at 70", got)
	}
	done()
}
