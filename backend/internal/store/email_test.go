package store

import (
	"sync"
	"testing"
	"time"
)

func testEmailTokens(t *testing.T, s accountStore) {
	ctx := t.Context()
	a := mustAccount(t, s, "mail@example.com")
	signup := EmailToken{Hash: hash("su"), Purpose: PurposeSignup, Email: "new@example.com", Name: "New",
		PasswordHash: "$argon2id$x", Created: t0, Expires: t0.Add(time.Hour)}
	reset := EmailToken{Hash: hash("rs"), Purpose: PurposeReset, AccountID: a.ID, Created: t0, Expires: t0.Add(time.Hour)}
	ok(t, "CreateEmailToken signup", s.CreateEmailToken(ctx, signup))
	ok(t, "CreateEmailToken reset", s.CreateEmailToken(ctx, reset))
	is(t, "hash taken", s.CreateEmailToken(ctx, signup), ErrExists)
	for _, bad := range []EmailToken{
		{Purpose: PurposeSignup, Created: t0, Expires: t0.Add(time.Hour)},
		{Hash: hash("x"), Purpose: "other", Created: t0, Expires: t0.Add(time.Hour)},
		{Hash: hash("x"), Purpose: PurposeReset, Created: t0, Expires: t0.Add(time.Hour)},
		{Hash: hash("x"), Purpose: PurposeSignup, Created: t0},
	} {
		is(t, "invalid email token", s.CreateEmailToken(ctx, bad), ErrInvalid)
	}
	is(t, "reset of unknown account", s.CreateEmailToken(ctx, EmailToken{Hash: hash("x"), Purpose: PurposeReset,
		AccountID: "nope", Created: t0, Expires: t0.Add(time.Hour)}), ErrNotFound)

	_, err := s.TakeEmailToken(ctx, hash("su"), PurposeReset, t0)
	is(t, "wrong purpose", err, ErrNotFound)
	_, err = s.TakeEmailToken(ctx, hash("su"), PurposeSignup, t0.Add(time.Hour))
	is(t, "expired", err, ErrNotFound)
	got, err := s.TakeEmailToken(ctx, hash("su"), PurposeSignup, t0.Add(time.Minute))
	ok(t, "TakeEmailToken", err)
	eq(t, "signup token", got, signup)
	_, err = s.TakeEmailToken(ctx, hash("su"), PurposeSignup, t0.Add(time.Minute))
	is(t, "taken twice", err, ErrNotFound)

	// Of concurrent uses of one link exactly one succeeds.
	var wg sync.WaitGroup
	wins := make(chan bool, 4)
	for range 4 {
		wg.Go(func() {
			_, err := s.TakeEmailToken(ctx, hash("rs"), PurposeReset, t0)
			wins <- err == nil
		})
	}
	wg.Wait()
	close(wins)
	n := 0
	for w := range wins {
		if w {
			n++
		}
	}
	eq(t, "concurrent takes that won", n, 1)

	ok(t, "CreateEmailToken expiring", s.CreateEmailToken(ctx, EmailToken{Hash: hash("old"), Purpose: PurposeReset,
		AccountID: a.ID, Created: t0, Expires: t0.Add(time.Minute)}))
	n64, err := s.DeleteExpired(ctx, t0.Add(time.Minute))
	ok(t, "DeleteExpired", err)
	eq(t, "expired rows deleted", n64, int64(1))

	for _, v := range []string{"s1", "s2"} {
		ok(t, "CreateSession", s.CreateSession(ctx, Session{Hash: hash(v), AccountID: a.ID, Created: t0, Expires: t0.Add(time.Hour)}))
	}
	ok(t, "DeleteSessions", s.DeleteSessions(ctx, a.ID))
	_, err = s.SessionByHash(ctx, hash("s1"))
	is(t, "session after DeleteSessions", err, ErrNotFound)
}
