package store

import "testing"

// testSetUsage: SetUsage replaces a day's counts (an import run twice counts once), leaves other
// days alone, and refuses what AddUsage refuses.
func testSetUsage(t *testing.T, s accountStore) {
	ctx := t.Context()
	a := mustAccount(t, s, "set-usage@example.com")
	ok(t, "AddUsage", s.AddUsage(ctx, a.ID, "2026-12-06", 1, 10))
	ok(t, "SetUsage", s.SetUsage(ctx, a.ID, "2026-12-07", 3, 100))
	ok(t, "SetUsage again", s.SetUsage(ctx, a.ID, "2026-12-07", 3, 100))
	got, err := s.Usage(ctx, a.ID)
	ok(t, "Usage", err)
	eq(t, "after two equal imports", got, []UsageDay{{a.ID, "2026-12-06", 1, 10}, {a.ID, "2026-12-07", 3, 100}})

	ok(t, "SetUsage later", s.SetUsage(ctx, a.ID, "2026-12-07", 5, 160))
	ok(t, "SetUsage other day", s.SetUsage(ctx, a.ID, "2026-12-06", 2, 20))
	got, err = s.Usage(ctx, a.ID)
	ok(t, "Usage", err)
	eq(t, "after a later import", got, []UsageDay{{a.ID, "2026-12-06", 2, 20}, {a.ID, "2026-12-07", 5, 160}})

	is(t, "unknown account", s.SetUsage(ctx, "nope", "2026-12-07", 1, 1), ErrNotFound)
	is(t, "bad day", s.SetUsage(ctx, a.ID, "2026-12-7", 1, 1), ErrInvalid)
	is(t, "injection in day", s.SetUsage(ctx, a.ID, "2026-12-07'; DROP TABLE usage_days; --", 1, 1), ErrInvalid)
	is(t, "negative", s.SetUsage(ctx, a.ID, "2026-12-07", -1, 1), ErrInvalid)
	got, err = s.Usage(ctx, a.ID)
	ok(t, "Usage", err)
	eq(t, "unchanged by refused calls", got, []UsageDay{{a.ID, "2026-12-06", 2, 20}, {a.ID, "2026-12-07", 5, 160}})
}
