package store

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

func testDevices(t *testing.T, s accountStore) {
	ctx := t.Context()
	a := mustAccount(t, s, "d@example.com")
	b := mustAccount(t, s, "d2@example.com")
	d := DeviceCode{Hash: hash("dc1"), UserCode: "BCDF-GHJK", Client: "vscode", Created: t0,
		Expires: t0.Add(10 * time.Minute), Interval: 5 * time.Second}
	ok(t, "CreateDeviceCode", s.CreateDeviceCode(ctx, d))
	clash := d
	clash.Hash = hash("dc2")
	is(t, "user code clash", s.CreateDeviceCode(ctx, clash), ErrExists)
	clash.UserCode, clash.Hash = "OTHER", hash("dc1")
	is(t, "hash clash", s.CreateDeviceCode(ctx, clash), ErrExists)
	got, err := s.DeviceByUserCode(ctx, "BCDF-GHJK")
	ok(t, "DeviceByUserCode", err)
	eq(t, "DeviceByUserCode", got, d)
	got, err = s.DeviceByHash(ctx, hash("dc1"))
	ok(t, "DeviceByHash", err)
	eq(t, "DeviceByHash", got, d)
	_, err = s.DeviceByUserCode(ctx, "NOPE")
	is(t, "unknown user code", err, ErrNotFound)

	// A poll returns the state before it and records itself.
	got, err = s.PollDevice(ctx, hash("dc1"), t0.Add(5*time.Second), 5*time.Second)
	ok(t, "PollDevice 1", err)
	eq(t, "first poll sees no poll", got, d)
	got, err = s.PollDevice(ctx, hash("dc1"), t0.Add(7*time.Second), 10*time.Second)
	ok(t, "PollDevice 2", err)
	eq(t, "second poll sees the first", got.LastPoll, t0.Add(5*time.Second))
	got, err = s.DeviceByHash(ctx, hash("dc1"))
	ok(t, "DeviceByHash after polls", err)
	eq(t, "last poll", got.LastPoll, t0.Add(7*time.Second))
	eq(t, "interval", got.Interval, 10*time.Second)
	_, err = s.PollDevice(ctx, hash("nope"), t0, time.Second)
	is(t, "poll unknown", err, ErrNotFound)

	is(t, "approve unknown code", s.ApproveDevice(ctx, "NOPE", a.ID), ErrNotFound)
	is(t, "approve for unknown account", s.ApproveDevice(ctx, "BCDF-GHJK", "nope"), ErrNotFound)
	ok(t, "ApproveDevice", s.ApproveDevice(ctx, "BCDF-GHJK", a.ID))
	ok(t, "ApproveDevice again", s.ApproveDevice(ctx, "BCDF-GHJK", a.ID))
	is(t, "approve for another", s.ApproveDevice(ctx, "BCDF-GHJK", b.ID), ErrExists)
	is(t, "deny approved", s.DenyDevice(ctx, "BCDF-GHJK"), ErrExists)
	got, err = s.DeviceByHash(ctx, hash("dc1"))
	ok(t, "DeviceByHash approved", err)
	eq(t, "approved by", got.AccountID, a.ID)

	e := DeviceCode{Hash: hash("dc3"), UserCode: "LMNP-QRST", Created: t0, Expires: t0.Add(time.Minute)}
	ok(t, "CreateDeviceCode 2", s.CreateDeviceCode(ctx, e))
	ok(t, "DenyDevice", s.DenyDevice(ctx, "LMNP-QRST"))
	ok(t, "DenyDevice again", s.DenyDevice(ctx, "LMNP-QRST"))
	is(t, "deny unknown", s.DenyDevice(ctx, "NOPE"), ErrNotFound)
	is(t, "approve denied", s.ApproveDevice(ctx, "LMNP-QRST", a.ID), ErrExists)
	got, err = s.DeviceByUserCode(ctx, "LMNP-QRST")
	ok(t, "DeviceByUserCode denied", err)
	eq(t, "denied", got.Denied, true)

	// Expiry: e (1 minute) and one session go; d (10 minutes) and the other session stay.
	ok(t, "CreateSession", s.CreateSession(ctx, Session{Hash: hash("s1"), AccountID: a.ID, Created: t0, Expires: t0.Add(time.Minute)}))
	ok(t, "CreateSession", s.CreateSession(ctx, Session{Hash: hash("s2"), AccountID: a.ID, Created: t0, Expires: t0.Add(time.Hour)}))
	n, err := s.DeleteExpired(ctx, t0.Add(time.Minute))
	ok(t, "DeleteExpired", err)
	eq(t, "expired rows", n, int64(2))
	_, err = s.DeviceByHash(ctx, hash("dc3"))
	is(t, "expired device", err, ErrNotFound)
	_, err = s.SessionByHash(ctx, hash("s1"))
	is(t, "expired session", err, ErrNotFound)
	_, err = s.SessionByHash(ctx, hash("s2"))
	ok(t, "live session", err)

	ok(t, "DeleteDevice", s.DeleteDevice(ctx, hash("dc1")))
	ok(t, "DeleteDevice again", s.DeleteDevice(ctx, hash("dc1")))
	_, err = s.DeviceByHash(ctx, hash("dc1"))
	is(t, "deleted device", err, ErrNotFound)
}

// testBilling applies billing events out of order: only a newer event changes the account.
func testBilling(t *testing.T, s accountStore) {
	ctx := t.Context()
	a := mustAccount(t, s, "bill@example.com")
	b := a
	b.Plan, b.Status, b.BillingProvider, b.CustomerID, b.SubscriptionID = "pro", StatusActive, "stripe", "cus_9", "sub_9"
	b.BillingUpdated = t0.Add(2 * time.Hour)
	for _, c := range []struct {
		name    string
		at      time.Duration
		status  string
		applied bool
	}{
		{"first", 2 * time.Hour, StatusActive, true},
		{"older", time.Hour, StatusCanceled, false},
		{"same time", 2 * time.Hour, StatusPastDue, false},
		{"newer", 3 * time.Hour, StatusPastDue, true},
	} {
		u := b
		u.Status, u.BillingUpdated = c.status, t0.Add(c.at)
		applied, err := s.UpdateBilling(ctx, u)
		ok(t, "UpdateBilling "+c.name, err)
		eq(t, "applied "+c.name, applied, c.applied)
	}
	got, err := s.Account(ctx, a.ID)
	ok(t, "Account", err)
	b.Status, b.BillingUpdated = StatusPastDue, t0.Add(3*time.Hour)
	eq(t, "billing state", got, b)
	_, err = s.UpdateBilling(ctx, Account{ID: "nope", Status: StatusActive, BillingUpdated: t0})
	is(t, "unknown account", err, ErrNotFound)
	_, err = s.UpdateBilling(ctx, Account{ID: a.ID, Status: StatusActive})
	is(t, "no event time", err, ErrInvalid)
}

func testSessions(t *testing.T, s accountStore) {
	ctx := t.Context()
	a := mustAccount(t, s, "s@example.com")
	se := Session{Hash: hash("sess"), AccountID: a.ID, Created: t0, Expires: t0.Add(24 * time.Hour)}
	ok(t, "CreateSession", s.CreateSession(ctx, se))
	is(t, "duplicate", s.CreateSession(ctx, se), ErrExists)
	is(t, "unknown account", s.CreateSession(ctx, Session{Hash: hash("x"), AccountID: "nope", Created: t0, Expires: t0}), ErrNotFound)
	is(t, "no expiry", s.CreateSession(ctx, Session{Hash: hash("y"), AccountID: a.ID, Created: t0}), ErrInvalid)
	got, err := s.SessionByHash(ctx, hash("sess"))
	ok(t, "SessionByHash", err)
	eq(t, "SessionByHash", got, se)
	ok(t, "DeleteSession", s.DeleteSession(ctx, hash("sess")))
	_, err = s.SessionByHash(ctx, hash("sess"))
	is(t, "deleted", err, ErrNotFound)
}

func testSigningKeys(t *testing.T, s accountStore) {
	ctx := t.Context()
	keys, err := s.SigningKeys(ctx)
	ok(t, "SigningKeys empty", err)
	eq(t, "no keys", len(keys), 0)
	k1 := SigningKey{ID: "k1", Private: hash("seed1"), Created: t0}
	k2 := SigningKey{ID: "k2", Private: hash("seed2"), Created: t0.Add(time.Hour)}
	ok(t, "AddSigningKey", s.AddSigningKey(ctx, k2))
	ok(t, "AddSigningKey", s.AddSigningKey(ctx, k1))
	is(t, "duplicate kid", s.AddSigningKey(ctx, k1), ErrExists)
	ok(t, "RetireSigningKey", s.RetireSigningKey(ctx, "k1", t0.Add(2*time.Hour)))
	ok(t, "RetireSigningKey again", s.RetireSigningKey(ctx, "k1", t0.Add(3*time.Hour)))
	is(t, "retire unknown", s.RetireSigningKey(ctx, "nope", t0), ErrNotFound)
	k1.Retired = t0.Add(2 * time.Hour)
	keys, err = s.SigningKeys(ctx)
	ok(t, "SigningKeys", err)
	eq(t, "SigningKeys", keys, []SigningKey{k1, k2})
	ok(t, "DeleteSigningKey", s.DeleteSigningKey(ctx, "k1"))
	is(t, "delete again", s.DeleteSigningKey(ctx, "k1"), ErrNotFound)
	keys, err = s.SigningKeys(ctx)
	ok(t, "SigningKeys after delete", err)
	eq(t, "SigningKeys after delete", keys, []SigningKey{k2})
}

func testEvents(t *testing.T, s accountStore) {
	ctx := t.Context()
	for _, c := range []struct {
		provider, id string
		at           time.Time
		fresh        bool
	}{
		{"stripe", "evt_1", t0, true},
		{"stripe", "evt_1", t0.Add(time.Hour), false},
		{"polar", "evt_1", t0.Add(time.Hour), true},
		{"stripe", "evt_2", t0.Add(2 * time.Hour), true},
	} {
		fresh, err := s.MarkEvent(ctx, c.provider, c.id, c.at)
		ok(t, "MarkEvent", err)
		eq(t, "fresh "+c.provider+" "+c.id, fresh, c.fresh)
	}
	n, err := s.PruneEvents(ctx, t0.Add(90*time.Minute))
	ok(t, "PruneEvents", err)
	eq(t, "pruned", n, int64(2))
	fresh, err := s.MarkEvent(ctx, "stripe", "evt_2", t0.Add(3*time.Hour))
	ok(t, "MarkEvent after prune", err)
	eq(t, "kept", fresh, false)
}

func testUsage(t *testing.T, s accountStore) {
	ctx := t.Context()
	a := mustAccount(t, s, "u@example.com")
	ok(t, "AddUsage", s.AddUsage(ctx, a.ID, "2026-12-07", 3, 100))
	ok(t, "AddUsage", s.AddUsage(ctx, a.ID, "2026-12-06", 1, 10))
	ok(t, "AddUsage", s.AddUsage(ctx, a.ID, "2026-12-07", 2, 50))
	is(t, "unknown account", s.AddUsage(ctx, "nope", "2026-12-07", 1, 1), ErrNotFound)
	is(t, "bad day", s.AddUsage(ctx, a.ID, "7/12/2026", 1, 1), ErrInvalid)
	got, err := s.Usage(ctx, a.ID)
	ok(t, "Usage", err)
	eq(t, "Usage", got, []UsageDay{{a.ID, "2026-12-06", 1, 10}, {a.ID, "2026-12-07", 5, 150}})
}

// fill gives an account one of everything the store keeps about an account.
func fill(t *testing.T, s accountStore, a Account, tag string) {
	t.Helper()
	ctx := t.Context()
	ok(t, "SetPassword", s.SetPassword(ctx, a.ID, "$argon2id$"+tag))
	ok(t, "CreateAPIKey", s.CreateAPIKey(ctx, APIKey{ID: NewID(), AccountID: a.ID, Name: tag, Prefix: tag, Hash: hash("key" + tag), Created: t0}))
	f := Family{ID: NewID(), AccountID: a.ID, Client: tag, Created: t0}
	ok(t, "CreateFamily", s.CreateFamily(ctx, f, hash("r1"+tag)))
	_, err := s.RotateRefresh(ctx, hash("r1"+tag), hash("r2"+tag), t0.Add(time.Minute))
	ok(t, "RotateRefresh", err)
	ok(t, "CreateSession", s.CreateSession(ctx, Session{Hash: hash("s" + tag), AccountID: a.ID, Created: t0, Expires: t0.Add(time.Hour)}))
	ok(t, "CreateDeviceCode", s.CreateDeviceCode(ctx, DeviceCode{Hash: hash("d" + tag), UserCode: "UC" + tag, Client: tag, Created: t0, Expires: t0.Add(time.Hour)}))
	ok(t, "ApproveDevice", s.ApproveDevice(ctx, "UC"+tag, a.ID))
	ok(t, "AddUsage", s.AddUsage(ctx, a.ID, "2026-12-07", 1, 2))
}

// mentions lists the rows of a dump in which any value contains one of the needles.
func mentions(rows []Row, needles ...string) []Row {
	var out []Row
	for _, r := range rows {
		for _, v := range r.Values {
			for _, n := range needles {
				if strings.Contains(v, n) {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

func testDeleteCascade(t *testing.T, s accountStore) {
	ctx := t.Context()
	a := mustAccount(t, s, "gone@example.com")
	b := mustAccount(t, s, "stays@example.com")
	fill(t, s, a, "a")
	fill(t, s, b, "b")
	before, err := s.Dump(ctx)
	ok(t, "Dump before", err)
	aNeedles := []string{a.ID, "gone@example.com", hex.EncodeToString(hash("keya")), hex.EncodeToString(hash("r2a")), hex.EncodeToString(hash("sa")), hex.EncodeToString(hash("da"))}
	tables := map[string]bool{}
	for _, r := range mentions(before, aNeedles...) {
		tables[r.Table] = true
	}
	// Every table that holds account data had a row about a (the dump finds them).
	for _, want := range []string{"accounts", "passwords", "api_keys", "families", "refresh_tokens", "sessions", "device_codes", "usage_days"} {
		if !tables[want] {
			t.Errorf("before delete: no row of %s mentions the account", want)
		}
	}
	ok(t, "DeleteAccount", s.DeleteAccount(ctx, a.ID))
	is(t, "delete again", s.DeleteAccount(ctx, a.ID), ErrNotFound)
	after, err := s.Dump(ctx)
	ok(t, "Dump after", err)
	if left := mentions(after, aNeedles...); len(left) > 0 {
		t.Errorf("rows still mention the deleted account: %+v", left)
	}
	if n, m := len(mentions(after, b.ID)), len(mentions(before, b.ID)); n != m || n == 0 {
		t.Errorf("the other account's rows: %d before, %d after", m, n)
	}
}

// injections are strings that would change a statement built by pasting text into SQL.
var injections = []string{
	`'; DROP TABLE accounts; --`,
	`" OR 1=1 --`,
	`x' OR '1'='1`,
	`'); DELETE FROM api_keys; --`,
	`\'; SELECT pg_sleep(10); --`,
	`$1 $2 ? ?1 :name @p %s %d`,
	`'||(SELECT hash FROM passwords LIMIT 1)||'`,
	"Robert'); DROP TABLE families;--\u2028\t\r\n",
	`ünïcødé ✓ 𝄞 '"\`,
}

func testInjection(t *testing.T, s accountStore) {
	ctx := t.Context()
	for i, x := range injections {
		tag := fmt.Sprint(i)
		a := Account{ID: x, Email: x + "@" + tag, Name: x, Created: t0, Plan: x, Status: StatusActive,
			BillingProvider: x, CustomerID: x, SubscriptionID: x, BillingUpdated: t0}
		got, err := s.CreateAccount(ctx, a)
		ok(t, "CreateAccount "+x, err)
		eq(t, "CreateAccount", got, a)
		for _, read := range []func() (Account, error){
			func() (Account, error) { return s.Account(ctx, x) },
			func() (Account, error) { return s.AccountByEmail(ctx, x+"@"+tag) },
			func() (Account, error) { return s.AccountByCustomer(ctx, x, x) },
		} {
			got, err := read()
			ok(t, "read account "+x, err)
			eq(t, "read account", got, a)
		}
		ok(t, "UpdateAccount", s.UpdateAccount(ctx, a))
		ok(t, "SetPassword", s.SetPassword(ctx, x, x))
		h, err := s.PasswordHash(ctx, x)
		ok(t, "PasswordHash", err)
		eq(t, "password", h, x)

		k := APIKey{ID: x, AccountID: x, Name: x, Prefix: x, Hash: hash("k" + x), Created: t0}
		ok(t, "CreateAPIKey", s.CreateAPIKey(ctx, k))
		ok(t, "TouchAPIKey", s.TouchAPIKey(ctx, x, t0))
		ok(t, "RevokeAPIKey", s.RevokeAPIKey(ctx, x, x, t0))
		k.LastUsed, k.Revoked = t0, t0
		keys, err := s.ListAPIKeys(ctx, x)
		ok(t, "ListAPIKeys", err)
		eq(t, "keys", keys, []APIKey{k})

		f := Family{ID: x, AccountID: x, Client: x, Created: t0}
		ok(t, "CreateFamily", s.CreateFamily(ctx, f, hash("f"+x)))
		got2, err := s.RotateRefresh(ctx, hash("f"+x), hash("g"+x), t0)
		ok(t, "RotateRefresh", err)
		f.LastUsed = t0
		eq(t, "family", got2, f)
		ok(t, "RevokeFamily", s.RevokeFamily(ctx, x, x, t0))

		d := DeviceCode{Hash: hash("d" + x), UserCode: x, Client: x, Created: t0, Expires: t0.Add(time.Hour)}
		ok(t, "CreateDeviceCode", s.CreateDeviceCode(ctx, d))
		ok(t, "ApproveDevice", s.ApproveDevice(ctx, x, x))
		d.AccountID = x
		gotD, err := s.DeviceByUserCode(ctx, x)
		ok(t, "DeviceByUserCode", err)
		eq(t, "device", gotD, d)

		se := Session{Hash: hash("s" + x), AccountID: x, Created: t0, Expires: t0.Add(time.Hour)}
		ok(t, "CreateSession", s.CreateSession(ctx, se))
		gotS, err := s.SessionByHash(ctx, hash("s"+x))
		ok(t, "SessionByHash", err)
		eq(t, "session", gotS, se)

		ok(t, "AddSigningKey", s.AddSigningKey(ctx, SigningKey{ID: x, Private: []byte(x), Created: t0}))
		ok(t, "RetireSigningKey", s.RetireSigningKey(ctx, x, t0))
		fresh, err := s.MarkEvent(ctx, x, x, t0)
		ok(t, "MarkEvent", err)
		eq(t, "fresh", fresh, true)
		ok(t, "AddUsage", s.AddUsage(ctx, x, "2026-12-07", 1, 1))
		u, err := s.Usage(ctx, x)
		ok(t, "Usage", err)
		eq(t, "usage", u, []UsageDay{{x, "2026-12-07", 1, 1}})
	}
	// Nothing was dropped or deleted along the way.
	list, err := s.ListAccounts(ctx)
	ok(t, "ListAccounts", err)
	eq(t, "accounts", len(list), len(injections))
	keys, err := s.SigningKeys(ctx)
	ok(t, "SigningKeys", err)
	eq(t, "signing keys", len(keys), len(injections))
	for i, x := range injections {
		ok(t, "DeleteAccount", s.DeleteAccount(ctx, x))
		if left := mentions(mustDump(t, s), hex.EncodeToString(hash("k"+x))); len(left) > 0 {
			t.Errorf("injection %d: rows left after delete: %+v", i, left)
		}
	}
}

func mustDump(t *testing.T, s accountStore) []Row {
	t.Helper()
	rows, err := s.Dump(t.Context())
	ok(t, "Dump", err)
	return rows
}
