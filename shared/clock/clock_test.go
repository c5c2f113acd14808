package clock

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestReal checks that Real's timers, tickers and AfterFunc keep the time package's times
// (in a synctest bubble, whose clock Real reads).
func TestReal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c Clock = Real{}
		start := c.Now()

		_, fired := c.NewTimer(time.Second)
		if got := (<-fired).Sub(start); got != time.Second {
			t.Errorf("timer fired after %v, want 1s", got)
		}
		tk, ticks := c.NewTicker(time.Second)
		<-ticks
		<-ticks
		tk.Stop()
		if got := c.Since(start); got != 3*time.Second {
			t.Errorf("after a timer and two ticks: Since = %v, want 3s", got)
		}

		ran := make(chan time.Duration, 1)
		tm := c.AfterFunc(time.Minute, func() { ran <- c.Since(start) })
		if !tm.Reset(2 * time.Second) {
			t.Error("Reset of an armed AfterFunc reported it inactive")
		}
		if got := <-ran; got != 5*time.Second {
			t.Errorf("AfterFunc ran at %v, want 5s", got)
		}
		if tm.Stop() {
			t.Error("Stop after AfterFunc ran reported it stopped it")
		}
	})
}

func TestOrReal(t *testing.T) {
	if _, ok := OrReal(nil).(Real); !ok {
		t.Errorf("OrReal(nil) = %T, want Real", OrReal(nil))
	}
	c := fixed{}
	if got := OrReal(c); got != Clock(c) {
		t.Errorf("OrReal(c) = %v, want c", got)
	}
}

type fixed struct{ Real }
