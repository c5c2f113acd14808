package upstream

import (
	"runtime"
	"sync"
	"time"
)

// The local model makes many small strings of a request's tokens while it completes (its
// per-request cache, the tokens themselves), which it drops afterwards but cannot overwrite.
// It runs under runtime/secret (see secretly), which erases them when the garbage localGC
// frees them; collectSoon makes that happen shortly after a local completion ends instead of
// whenever the heap next grows enough.

// collectDelay is how long after a local completion the collection runs: completions that
// follow within it share one.
const collectDelay = 100 * time.Millisecond

var localGC struct {
	mu      sync.Mutex
	pending bool
}

// collectSoon schedules one garbage collection collectDelay from now, unless one is pending.
func collectSoon() {
	localGC.mu.Lock()
	defer localGC.mu.Unlock()
	if localGC.pending {
		return
	}
	localGC.pending = true
	time.AfterFunc(collectDelay, func() { // owns nothing; ends after one collection
		localGC.mu.Lock()
		localGC.pending = false
		localGC.mu.Unlock()
		runtime.GC()
	})
}
