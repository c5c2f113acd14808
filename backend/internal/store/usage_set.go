package store

import (
	"context"
	"fmt"
	"time"
)

// SetUsage sets the account's counts for a day (YYYY-MM-DD), replacing what was there: the
// import of the routing plane's daily counters reads a day's running totals, so that importing
// it again must not add. ErrNotFound when the account does not exist, ErrInvalid for a bad day
// or a negative count.
func (e *engine) SetUsage(ctx context.Context, accountID, day string, requests, tokens int64) error {
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return e.fail("set usage", fmt.Errorf("%w: day %q", ErrInvalid, day))
	}
	if requests < 0 || tokens < 0 {
		return e.fail("set usage", fmt.Errorf("%w: negative count", ErrInvalid))
	}
	_, err := e.db.ExecContext(ctx, e.q.setUsage, accountID, day, requests, tokens)
	return e.fail("set usage", err)
}
