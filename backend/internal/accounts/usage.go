package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/usage"
)

// UsageStore is what the usage import needs of the account database.
type UsageStore interface {
	ListAccounts(ctx context.Context) ([]store.Account, error)
	SetUsage(ctx context.Context, accountID, day string, requests, tokens int64) error
}

// ImportUsage copies the routing plane's daily counters (package usage, in its Valkey under
// prefix) of every account for the last days UTC days, today included, into the account
// database, for billing. A day's counts replace what an earlier import stored, so that running
// it again, while today is still being counted, never counts twice. Days without counters
// (nothing used, or expired after usage.TTL) leave the database as it is. Only numbers travel.
func ImportUsage(ctx context.Context, st UsageStore, client valkey.Client, prefix string, days int) error {
	_, err := importUsage(ctx, st, client, prefix, days, time.Now())
	return err
}

// importBatch is how many accounts' counters one pipelined read asks Valkey for.
const importBatch = 500

// importUsage is ImportUsage at a given time; it returns how many account-days it wrote. It
// carries on past an account that fails (deleted meanwhile) and returns the errors joined.
func importUsage(ctx context.Context, st UsageStore, client valkey.Client, prefix string, days int, now time.Time) (int, error) {
	if days < 1 {
		return 0, fmt.Errorf("usage import: days %d: want at least 1", days)
	}
	list, err := st.ListAccounts(ctx)
	if err != nil {
		return 0, fmt.Errorf("usage import: %w", err)
	}
	ids := make([]string, len(list))
	for i, a := range list {
		ids[i] = a.ID
	}
	gone := map[string]bool{} // deleted since the list was read
	var errs []error
	n := 0
	for d := range days {
		day := now.UTC().AddDate(0, 0, -d)
		for chunk := range slices.Chunk(ids, importBatch) {
			counts, err := usage.Read(ctx, client, prefix, chunk, day)
			if err != nil {
				// Valkey is shared by every account: give up on this run.
				return n, errors.Join(append(errs, fmt.Errorf("usage import: %w", err))...)
			}
			for i, c := range counts {
				id := chunk[i]
				if c == (usage.Counts{}) || gone[id] {
					continue
				}
				err := st.SetUsage(ctx, id, day.Format(time.DateOnly), c.Requests, c.PromptTokens+c.CompletionTokens)
				switch {
				case errors.Is(err, store.ErrNotFound):
					gone[id] = true
				case errors.Is(err, store.ErrUnavailable):
					return n, errors.Join(append(errs, fmt.Errorf("usage import: %w", err))...)
				case err != nil:
					errs = append(errs, fmt.Errorf("usage import: account %s: %w", id, err))
				default:
					n++
				}
			}
		}
	}
	return n, errors.Join(errs...)
}

// Usage runs ImportUsage every Every until its context ends: the account service's billing
// counts follow the routing plane's within one period.
type Usage struct {
	Store  UsageStore
	Client valkey.Client // the routing plane's Valkey
	Prefix string        // its valkey_prefix
	// Days is how many UTC days each run reads back, today included (default 2, so that the
	// end of yesterday is imported after midnight; at most usage.TTL's 35).
	Days int
	// Every is the period (default 5 minutes).
	Every time.Duration
	Log   *slog.Logger
}

// Run imports once at once, then every period, until ctx ends; it returns ctx's error. A failed
// run is logged and retried at the next period.
func (u *Usage) Run(ctx context.Context) error {
	days, every, log := u.Days, u.Every, u.Log
	if days <= 0 {
		days = 2
	}
	days = min(days, int(usage.TTL/(24*time.Hour)))
	if every <= 0 {
		every = 5 * time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		start := time.Now()
		n, err := importUsage(ctx, u.Store, u.Client, u.Prefix, days, start)
		if err != nil && ctx.Err() == nil {
			log.Warn("usage import failed", "err", err, "days_written", n)
		} else if err == nil {
			log.Debug("usage imported", "days_written", n, "took", time.Since(start))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
