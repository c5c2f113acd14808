package clocktest

import (
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestClock(t *testing.T) {
	c := New(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Errorf("Now = %v, want %v", got, t0)
	}
	if got := c.Since(t0.Add(-time.Minute)); got != time.Minute {
		t.Errorf("Since = %v, want 1m", got)
	}

	ran := make(chan struct{}, 2)
	go c.AfterFunc(time.Hour, func() { ran <- struct{}{} }) // Await waits for it
	fn := c.Await(t, time.Hour)
	if !fn.Stop() || fn.Stop() {
		t.Error("Stop: want true, then false")
	}
	fn.Fire() // stopped, as a late timer
	<-ran
	if fn.Reset(time.Minute) || c.Await(t, time.Minute) != fn {
		t.Error("Reset: want inactive before, and the timer found by its new duration")
	}

	tm, fired := c.NewTimer(time.Second)
	tk, ticks := c.NewTicker(2 * time.Second)
	c.Await(t, time.Second).Fire()
	c.Await(t, time.Second).Fire() // the channel holds one value; the second is dropped
	if got := <-fired; !got.Equal(t0) {
		t.Errorf("timer sent %v, want %v", got, t0)
	}
	select {
	case <-fired:
		t.Error("a second value was waiting")
	default:
	}
	c.Await(t, 2*time.Second).Fire()
	<-ticks
	tm.Stop()
	tk.Stop()
}
