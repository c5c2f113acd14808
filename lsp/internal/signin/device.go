package signin

import (
	"context"
	"errors"
	"time"

	"github.com/codingplan/codingplan/shared/clock"
)

// slowDown is what RFC 8628 §3.5 adds to the interval, for good, at each slow_down.
const slowDown = 5 * time.Second

// Await polls the token endpoint for the device sign-in d until the user approves it (its
// tokens), denies it (ErrDenied), it expires (ErrExpired), or ctx ends (ctx.Err()). It waits
// d.Interval between polls, five seconds more after each slow_down, and Retry-After when the
// service is unavailable; the clock schedules the waits.
func (s *Service) Await(ctx context.Context, clk clock.Clock, d Device) (Tokens, error) {
	clk = clock.OrReal(clk)
	interval := d.Interval
	wait := interval
	for {
		if !clk.Now().Before(d.Expires) {
			return Tokens{}, ErrExpired
		}
		t, fired := clk.NewTimer(min(wait, max(d.Expires.Sub(clk.Now()), 0)))
		select {
		case <-ctx.Done():
			t.Stop()
			return Tokens{}, ctx.Err()
		case <-fired:
		}
		if !clk.Now().Before(d.Expires) {
			return Tokens{}, ErrExpired
		}
		tok, err := s.PollDevice(ctx, d)
		var e *Error
		switch {
		case err == nil:
			return tok, nil
		case ctx.Err() != nil:
			return Tokens{}, ctx.Err()
		case errors.As(err, &e) && e.Code == "authorization_pending":
			wait = interval
		case errors.As(err, &e) && e.Code == "slow_down":
			interval += slowDown
			wait = interval
		case errors.Is(err, ErrUnavailable):
			// The service or the network hiccuped: the code is still good, keep polling.
			wait = interval
			if errors.As(err, &e) && e.RetryAfter > wait {
				wait = e.RetryAfter
			}
		default:
			return Tokens{}, err
		}
	}
}
