// Package clock is time as codingplan's code reads it: one interface, in the shape of
// tailscale's tstime.Clock, injected into whatever measures or schedules, so that a test can
// hold time still (clocktest) instead of sleeping. Real is the clock of the time package;
// under testing/synctest it is the bubble's fake clock.
//
// Connection deadlines (SetReadDeadline and the like) are not read from a Clock: the network
// stack compares them with the real clock.
package clock

import "time"

// Clock tells the time and makes timers.
type Clock interface {
	// Now returns the current time, with a monotonic reading when the clock has one.
	Now() time.Time
	// Since returns the time elapsed since t.
	Since(t time.Time) time.Duration
	// NewTimer returns a timer that sends the time on its channel after d.
	NewTimer(d time.Duration) (Timer, <-chan time.Time)
	// NewTicker returns a ticker that sends the time on its channel every d.
	NewTicker(d time.Duration) (Ticker, <-chan time.Time)
	// AfterFunc runs f in its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer made by a Clock (as *time.Timer).
type Timer interface {
	// Stop prevents the timer from firing; it reports whether it stopped it.
	Stop() bool
	// Reset makes the timer fire after d; it reports whether the timer was active.
	Reset(d time.Duration) bool
}

// Ticker is a ticker made by a Clock (as *time.Ticker).
type Ticker interface {
	// Stop turns the ticker off.
	Stop()
}

// Real is the clock of the time package.
type Real struct{}

func (Real) Now() time.Time { return time.Now() }

func (Real) Since(t time.Time) time.Duration { return time.Since(t) }

func (Real) NewTimer(d time.Duration) (Timer, <-chan time.Time) {
	t := time.NewTimer(d)
	return t, t.C
}

func (Real) NewTicker(d time.Duration) (Ticker, <-chan time.Time) {
	t := time.NewTicker(d)
	return t, t.C
}

func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// OrReal returns c, or Real when c is nil: for a constructor's optional Clock.
func OrReal(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}
