package upstream

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestWatchdog checks the first-token, idle and total timeouts on a fake clock: events closer
// than the idle timeout keep a stream alive until the total timeout, and the first gap longer
// than it ends the stream.
func TestWatchdog(t *testing.T) {
	const first, idle = time.Second, 100 * time.Millisecond
	tests := []struct {
		name  string
		steps []time.Duration // wait, then an event; the first event is the first token
		quiet time.Duration   // the wait after the last event
		total time.Duration   // the total timeout; 0: none
		want  error           // the cause when the wait ends, nil when still alive
	}{
		{"no token", nil, first, 0, errFirstToken},
		{"no token yet", nil, first - time.Millisecond, 0, nil},
		{"token then quiet", []time.Duration{first / 2}, idle, 0, errIdle},
		{"token then a short gap", []time.Duration{first / 2}, idle - time.Millisecond, 0, nil},
		{"events keep it alive", []time.Duration{10 * time.Millisecond, 60 * time.Millisecond, 90 * time.Millisecond,
			99 * time.Millisecond, 50 * time.Millisecond, 99 * time.Millisecond}, idle - time.Millisecond, 0, nil},
		{"a gap after events", []time.Duration{10 * time.Millisecond, 60 * time.Millisecond, 90 * time.Millisecond}, idle, 0, errIdle},
		{"total before the first token", nil, first / 2, first / 2, errTotal},
		{"total not yet", nil, first/2 - time.Millisecond, first / 2, nil},
		{"total while events keep it alive", []time.Duration{first / 2, 90 * time.Millisecond, 90 * time.Millisecond},
			20 * time.Millisecond, first/2 + 200*time.Millisecond, errTotal},
		{"total cuts an idle wait short", []time.Duration{first / 2}, 50 * time.Millisecond, first/2 + 50*time.Millisecond, errTotal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var cause error
				d := startWatchdog(Timeouts{FirstToken: first, Idle: idle, Total: tt.total}, func(err error) {
					mu.Lock()
					defer mu.Unlock()
					if cause == nil {
						cause = err
					}
				})
				defer d.stop()
				check := func(when string, want error) {
					t.Helper()
					synctest.Wait()
					mu.Lock()
					defer mu.Unlock()
					if cause != want {
						t.Fatalf("%s: cause %v, want %v", when, cause, want)
					}
				}
				for i, wait := range tt.steps {
					time.Sleep(wait)
					check("before event "+string(rune('0'+i)), nil)
					d.event()
					d.token()
				}
				time.Sleep(tt.quiet)
				check("at the end", tt.want)
			})
		})
	}
}
