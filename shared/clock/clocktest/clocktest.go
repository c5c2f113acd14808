// Package clocktest is a clock.Clock for tests that cannot run in a testing/synctest bubble,
// such as those that talk over a real network: its time stands still, and its timers fire
// only when the test fires them.
package clocktest

import (
	"sync"
	"testing"
	"time"

	"github.com/codingplan/codingplan/shared/clock"
)

// awaitLimit bounds Await's wait for a timer.
const awaitLimit = 10 * time.Second

// Clock is a fake clock.Clock.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*Timer
	made   chan struct{} // closed and replaced when a timer is made
}

// New returns a Clock whose time is now.
func New(now time.Time) *Clock { return &Clock{now: now, made: make(chan struct{})} }

// Timer is a timer or ticker made by a Clock.
type Timer struct {
	c       *Clock
	d       time.Duration  // as made, or last reset
	f       func()         // AfterFunc's function; nil for a timer or ticker
	ch      chan time.Time // a timer's or ticker's channel
	stopped bool
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock's time forward by d. Its timers do not fire by themselves: the test
// fires them (Timer.Fire).
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

func (c *Clock) NewTimer(d time.Duration) (clock.Timer, <-chan time.Time) {
	t := c.add(d, nil)
	return t, t.ch
}

func (c *Clock) NewTicker(d time.Duration) (clock.Ticker, <-chan time.Time) {
	t := c.add(d, nil)
	return ticker{t}, t.ch
}

// ticker is a Timer as a clock.Ticker.
type ticker struct{ t *Timer }

func (t ticker) Stop() { t.t.Stop() }

func (c *Clock) AfterFunc(d time.Duration, f func()) clock.Timer { return c.add(d, f) }

func (c *Clock) add(d time.Duration, f func()) *Timer {
	t := &Timer{c: c, d: d, f: f}
	if f == nil {
		t.ch = make(chan time.Time, 1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = append(c.timers, t)
	close(c.made)
	c.made = make(chan struct{})
	return t
}

// Await returns the first timer made for duration d (a ticker's period, an AfterFunc's delay),
// waiting for it to be made; the test fails when none is within 10 seconds.
func (c *Clock) Await(tb testing.TB, d time.Duration) *Timer {
	tb.Helper()
	deadline := time.NewTimer(awaitLimit)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		made, seen := c.made, make([]time.Duration, 0, len(c.timers))
		for _, t := range c.timers {
			if t.d == d {
				c.mu.Unlock()
				return t
			}
			seen = append(seen, t.d)
		}
		c.mu.Unlock()
		select {
		case <-made:
		case <-deadline.C:
			tb.Fatalf("no timer for %v was made within %v (made: %v)", d, awaitLimit, seen)
		}
	}
}

// Fire fires t now, stopped or not, as a timer that fired just as it was stopped would: it
// runs an AfterFunc's function on the caller's goroutine, or sends the clock's time on the
// channel unless a value is waiting there.
func (t *Timer) Fire() {
	if t.f != nil {
		t.f()
		return
	}
	select {
	case t.ch <- t.c.Now():
	default:
	}
}

// Stop marks t stopped and reports whether it was not.
func (t *Timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Reset makes t active with duration d and reports whether it was active.
func (t *Timer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.d, t.stopped = d, false
	return was
}
