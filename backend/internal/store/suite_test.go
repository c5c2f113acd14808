package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// accountStore is the method set both implementations have: the conformance suite runs against
// it, and the assertions below keep the two from drifting apart.
type accountStore interface {
	Close() error
	Migrate(ctx context.Context) error
	Version(ctx context.Context) (int64, error)
	CreateAccount(ctx context.Context, a Account) (Account, error)
	Account(ctx context.Context, id string) (Account, error)
	AccountByEmail(ctx context.Context, email string) (Account, error)
	AccountByCustomer(ctx context.Context, provider, customerID string) (Account, error)
	ListAccounts(ctx context.Context) ([]Account, error)
	UpdateAccount(ctx context.Context, a Account) error
	UpdateBilling(ctx context.Context, a Account) (bool, error)
	DeleteAccount(ctx context.Context, id string) error
	SetPassword(ctx context.Context, accountID, hash string) error
	PasswordHash(ctx context.Context, accountID string) (string, error)
	CreateAPIKey(ctx context.Context, k APIKey) error
	APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error)
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
	ListAPIKeys(ctx context.Context, accountID string) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, accountID, id string, at time.Time) error
	CreateFamily(ctx context.Context, f Family, tokenHash []byte) error
	RotateRefresh(ctx context.Context, oldHash, newHash []byte, at time.Time) (Family, error)
	ListFamilies(ctx context.Context, accountID string) ([]Family, error)
	RevokeFamily(ctx context.Context, accountID, id string, at time.Time) error
	PruneRefresh(ctx context.Context, before time.Time) (int64, error)
	CreateDeviceCode(ctx context.Context, d DeviceCode) error
	DeviceByUserCode(ctx context.Context, code string) (DeviceCode, error)
	DeviceByHash(ctx context.Context, hash []byte) (DeviceCode, error)
	ApproveDevice(ctx context.Context, userCode, accountID string) error
	DenyDevice(ctx context.Context, userCode string) error
	PollDevice(ctx context.Context, hash []byte, at time.Time, interval time.Duration) (DeviceCode, error)
	DeleteDevice(ctx context.Context, hash []byte) error
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
	CreateSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	DeleteSession(ctx context.Context, hash []byte) error
	AddSigningKey(ctx context.Context, k SigningKey) error
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	RetireSigningKey(ctx context.Context, id string, at time.Time) error
	DeleteSigningKey(ctx context.Context, id string) error
	MarkEvent(ctx context.Context, provider, eventID string, at time.Time) (bool, error)
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
	AddUsage(ctx context.Context, accountID, day string, requests, tokens int64) error
	SetUsage(ctx context.Context, accountID, day string, requests, tokens int64) error
	Usage(ctx context.Context, accountID string) ([]UsageDay, error)
	Columns(ctx context.Context) (map[string][]string, error)
	Dump(ctx context.Context) ([]Row, error)
	CreateEmailToken(ctx context.Context, t EmailToken) error
	TakeEmailToken(ctx context.Context, hash []byte, purpose string, now time.Time) (EmailToken, error)
	DeleteSessions(ctx context.Context, accountID string) error
}

var (
	_ accountStore = (*SQLite)(nil)
	_ accountStore = (*Postgres)(nil)
)

// opener returns a new, empty, unmigrated store of one implementation, closed and removed when
// the test ends.
type opener func(t testing.TB) accountStore

// t0 is a time the databases keep exactly (microseconds, UTC).
var t0 = time.Date(2026, 12, 7, 10, 0, 0, 123456000, time.UTC)

func runSuite(t *testing.T, open opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, accountStore)
	}{
		{"Migrate", testMigrate},
		{"Accounts", testAccounts},
		{"Billing", testBilling},
		{"Passwords", testPasswords},
		{"APIKeys", testAPIKeys},
		{"Families", testFamilies},
		{"RotateRace", testRotateRace},
		{"PruneRefresh", testPruneRefresh},
		{"Devices", testDevices},
		{"Sessions", testSessions},
		{"SigningKeys", testSigningKeys},
		{"Events", testEvents},
		{"Usage", testUsage},
		{"SetUsage", testSetUsage},
		{"EmailTokens", testEmailTokens},
		{"DeleteCascade", testDeleteCascade},
		{"Injection", testInjection},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if tc.name != "Migrate" {
				if err := s.Migrate(t.Context()); err != nil {
					t.Fatalf("Migrate: %v", err)
				}
			}
			tc.fn(t, s)
		})
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func ok(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func is(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

func hash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func mustAccount(t *testing.T, s accountStore, email string) Account {
	t.Helper()
	a, err := s.CreateAccount(t.Context(), Account{Email: email, Name: "n", Created: t0, Plan: "free"})
	ok(t, "CreateAccount "+email, err)
	return a
}

func testMigrate(t *testing.T, s accountStore) {
	ctx := t.Context()
	v, err := s.Version(ctx)
	ok(t, "Version before", err)
	eq(t, "version before", v, int64(0))
	ok(t, "Migrate", s.Migrate(ctx))
	ok(t, "Migrate again", s.Migrate(ctx))
	v, err = s.Version(ctx)
	ok(t, "Version", err)
	eq(t, "version", v, int64(2))
}

func testAccounts(t *testing.T, s accountStore) {
	ctx := t.Context()
	a, err := s.CreateAccount(ctx, Account{Email: "Ann@Example.com", Name: "Ann", Created: t0, Plan: "free"})
	ok(t, "CreateAccount", err)
	if a.ID == "" || a.Status != StatusActive {
		t.Fatalf("CreateAccount did not fill ID and Status: %+v", a)
	}
	got, err := s.Account(ctx, a.ID)
	ok(t, "Account", err)
	eq(t, "Account", got, a)
	for _, e := range []string{"ann@example.com", "ANN@EXAMPLE.COM", " Ann@Example.com "} {
		got, err = s.AccountByEmail(ctx, e)
		ok(t, "AccountByEmail "+e, err)
		eq(t, "AccountByEmail "+e, got, a)
	}
	_, err = s.CreateAccount(ctx, Account{Email: "ANN@example.COM", Created: t0})
	is(t, "duplicate email", err, ErrExists)
	_, err = s.CreateAccount(ctx, Account{ID: a.ID, Email: "other@example.com", Created: t0})
	is(t, "duplicate id", err, ErrExists)
	_, err = s.CreateAccount(ctx, Account{Email: "", Created: t0})
	is(t, "empty email", err, ErrInvalid)
	_, err = s.CreateAccount(ctx, Account{Email: "x@example.com", Status: "gone"})
	is(t, "bad status", err, ErrInvalid)

	// Unicode emails: non-ASCII letters fold on both dialects alike.
	u, err := s.CreateAccount(ctx, Account{Email: "Élodie.Ünal@Exemple.fr", Created: t0.Add(time.Second)})
	ok(t, "CreateAccount unicode", err)
	got, err = s.AccountByEmail(ctx, "élodie.ünal@exemple.FR")
	ok(t, "AccountByEmail unicode", err)
	eq(t, "AccountByEmail unicode", got.ID, u.ID)
	eq(t, "email kept verbatim", got.Email, "Élodie.Ünal@Exemple.fr")
	_, err = s.CreateAccount(ctx, Account{Email: "ÉLODIE.ÜNAL@EXEMPLE.FR", Created: t0})
	is(t, "duplicate unicode email", err, ErrExists)
	_, err = s.CreateAccount(ctx, Account{Email: "E\u0301lodie.U\u0308nal@exemple.fr", Created: t0})
	is(t, "duplicate email with combining accents", err, ErrExists)
	got, err = s.AccountByEmail(ctx, "e\u0301lodie.u\u0308nal@exemple.fr")
	ok(t, "AccountByEmail with combining accents", err)
	eq(t, "AccountByEmail with combining accents", got.ID, u.ID)
	for _, e := range []string{"用户@例子.广告", "δοκιμή@παράδειγμα.δοκιμή", "ñandú@ejemplo.es"} {
		x, err := s.CreateAccount(ctx, Account{Email: e, Created: t0.Add(2 * time.Second)})
		ok(t, "CreateAccount "+e, err)
		got, err = s.AccountByEmail(ctx, strings.ToUpper(e))
		ok(t, "AccountByEmail "+e, err)
		eq(t, "AccountByEmail "+e, got, x)
		ok(t, "DeleteAccount "+e, s.DeleteAccount(ctx, x.ID))
	}
	_, err = s.Account(ctx, "nope")
	is(t, "unknown id", err, ErrNotFound)
	_, err = s.AccountByEmail(ctx, "nope@example.com")
	is(t, "unknown email", err, ErrNotFound)

	// Update every field; billing lookups.
	a.Email, a.Name, a.Plan, a.Status = "ann@new.example", "Ann B", "pro", StatusPastDue
	a.BillingProvider, a.CustomerID, a.SubscriptionID = "stripe", "cus_1", "sub_1"
	a.BillingUpdated = t0.Add(time.Hour)
	ok(t, "UpdateAccount", s.UpdateAccount(ctx, a))
	got, err = s.Account(ctx, a.ID)
	ok(t, "Account after update", err)
	eq(t, "updated", got, a)
	got, err = s.AccountByCustomer(ctx, "stripe", "cus_1")
	ok(t, "AccountByCustomer", err)
	eq(t, "AccountByCustomer", got, a)
	_, err = s.AccountByCustomer(ctx, "polar", "cus_1")
	is(t, "other provider", err, ErrNotFound)
	_, err = s.AccountByCustomer(ctx, "", "")
	is(t, "no customer", err, ErrNotFound)
	u.BillingProvider, u.CustomerID = "stripe", "cus_1"
	is(t, "customer clash", s.UpdateAccount(ctx, u), ErrExists)
	u.BillingProvider, u.CustomerID, u.Email = "", "", "ANN@new.example"
	is(t, "email clash", s.UpdateAccount(ctx, u), ErrExists)
	is(t, "update unknown", s.UpdateAccount(ctx, Account{ID: "nope", Email: "z@z", Status: StatusActive}), ErrNotFound)
	a.Status = "bogus"
	is(t, "update bad status", s.UpdateAccount(ctx, a), ErrInvalid)

	list, err := s.ListAccounts(ctx)
	ok(t, "ListAccounts", err)
	if len(list) != 2 || list[0].ID != a.ID || list[1].ID != u.ID {
		t.Errorf("ListAccounts = %+v, want [%s %s]", list, a.ID, u.ID)
	}
	// Nanoseconds are dropped, locations become UTC.
	n, err := s.CreateAccount(ctx, Account{Email: "ns@example.com",
		Created: time.Date(2026, 1, 2, 3, 4, 5, 6007, time.FixedZone("X", 3600))})
	ok(t, "CreateAccount ns", err)
	got, err = s.Account(ctx, n.ID)
	ok(t, "Account ns", err)
	eq(t, "created", got.Created, time.Date(2026, 1, 2, 2, 4, 5, 6000, time.UTC))
	eq(t, "returned", n, got)
}

func testPasswords(t *testing.T, s accountStore) {
	ctx := t.Context()
	a := mustAccount(t, s, "p@example.com")
	_, err := s.PasswordHash(ctx, a.ID)
	is(t, "no password", err, ErrNotFound)
	ok(t, "SetPassword", s.SetPassword(ctx, a.ID, "$argon2id$v=19$one"))
	ok(t, "SetPassword again", s.SetPassword(ctx, a.ID, "$argon2id$v=19$two"))
	h, err := s.PasswordHash(ctx, a.ID)
	ok(t, "PasswordHash", err)
	eq(t, "hash", h, "$argon2id$v=19$two")
	is(t, "unknown account", s.SetPassword(ctx, "nope", "x"), ErrNotFound)
}

func testAPIKeys(t *testing.T, s accountStore) {
	ctx := t.Context()
	a := mustAccount(t, s, "k@example.com")
	b := mustAccount(t, s, "k2@example.com")
	k := APIKey{ID: NewID(), AccountID: a.ID, Name: "ci", Prefix: "cp_ab12", Hash: hash("key1"), Created: t0}
	ok(t, "CreateAPIKey", s.CreateAPIKey(ctx, k))
	got, err := s.APIKeyByHash(ctx, hash("key1"))
	ok(t, "APIKeyByHash", err)
	eq(t, "APIKeyByHash", got, k)
	_, err = s.APIKeyByHash(ctx, hash("other"))
	is(t, "unknown hash", err, ErrNotFound)
	k2 := APIKey{ID: NewID(), AccountID: a.ID, Name: "laptop", Prefix: "cp_cd34", Hash: hash("key2"), Created: t0.Add(time.Minute)}
	ok(t, "CreateAPIKey 2", s.CreateAPIKey(ctx, k2))
	dup := k2
	dup.ID = NewID()
	is(t, "duplicate hash", s.CreateAPIKey(ctx, dup), ErrExists)
	dup.Hash, dup.AccountID = hash("key3"), "nope"
	is(t, "unknown account", s.CreateAPIKey(ctx, dup), ErrNotFound)
	is(t, "no id", s.CreateAPIKey(ctx, APIKey{AccountID: a.ID, Hash: hash("k")}), ErrInvalid)

	ok(t, "TouchAPIKey", s.TouchAPIKey(ctx, k.ID, t0.Add(2*time.Hour)))
	is(t, "touch unknown", s.TouchAPIKey(ctx, "nope", t0), ErrNotFound)
	is(t, "revoke other account's", s.RevokeAPIKey(ctx, b.ID, k.ID, t0), ErrNotFound)
	ok(t, "RevokeAPIKey", s.RevokeAPIKey(ctx, a.ID, k.ID, t0.Add(3*time.Hour)))
	ok(t, "RevokeAPIKey again", s.RevokeAPIKey(ctx, a.ID, k.ID, t0.Add(4*time.Hour)))
	k.LastUsed, k.Revoked = t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	list, err := s.ListAPIKeys(ctx, a.ID)
	ok(t, "ListAPIKeys", err)
	eq(t, "ListAPIKeys", list, []APIKey{k, k2})
	list, err = s.ListAPIKeys(ctx, b.ID)
	ok(t, "ListAPIKeys empty", err)
	eq(t, "ListAPIKeys empty", len(list), 0)
}

func testFamilies(t *testing.T, s accountStore) {
	ctx := t.Context()
	a := mustAccount(t, s, "f@example.com")
	b := mustAccount(t, s, "f2@example.com")
	f := Family{ID: NewID(), AccountID: a.ID, Client: "vscode", Created: t0}
	ok(t, "CreateFamily", s.CreateFamily(ctx, f, hash("r1")))
	is(t, "duplicate token", s.CreateFamily(ctx, Family{ID: NewID(), AccountID: a.ID, Created: t0}, hash("r1")), ErrExists)
	is(t, "unknown account", s.CreateFamily(ctx, Family{ID: NewID(), AccountID: "nope", Created: t0}, hash("rx")), ErrNotFound)

	got, err := s.RotateRefresh(ctx, hash("r1"), hash("r2"), t0.Add(time.Minute))
	ok(t, "rotate r1", err)
	f.LastUsed = t0.Add(time.Minute)
	eq(t, "rotated family", got, f)
	got, err = s.RotateRefresh(ctx, hash("r2"), hash("r3"), t0.Add(2*time.Minute))
	ok(t, "rotate r2", err)
	f.LastUsed = t0.Add(2 * time.Minute)
	eq(t, "rotated family", got, f)
	_, err = s.RotateRefresh(ctx, hash("unknown"), hash("r9"), t0)
	is(t, "unknown token", err, ErrNotFound)
	_, err = s.RotateRefresh(ctx, hash("r3"), hash("r2"), t0)
	is(t, "new hash taken", err, ErrExists)

	// Reuse of r1 revokes the family: its current token r3 stops working too.
	_, err = s.RotateRefresh(ctx, hash("r1"), hash("r4"), t0.Add(3*time.Minute))
	is(t, "reuse", err, ErrReused)
	_, err = s.RotateRefresh(ctx, hash("r3"), hash("r4"), t0.Add(4*time.Minute))
	is(t, "after reuse", err, ErrNotFound)
	_, err = s.RotateRefresh(ctx, hash("r1"), hash("r4"), t0.Add(4*time.Minute))
	is(t, "reuse of a revoked family", err, ErrNotFound)
	f.Revoked = t0.Add(3 * time.Minute)

	g := Family{ID: NewID(), AccountID: a.ID, Client: "neovim", Created: t0.Add(time.Hour)}
	ok(t, "CreateFamily 2", s.CreateFamily(ctx, g, hash("g1")))
	is(t, "revoke other account's", s.RevokeFamily(ctx, b.ID, g.ID, t0), ErrNotFound)
	ok(t, "RevokeFamily", s.RevokeFamily(ctx, a.ID, g.ID, t0.Add(2*time.Hour)))
	ok(t, "RevokeFamily again", s.RevokeFamily(ctx, a.ID, g.ID, t0.Add(3*time.Hour)))
	g.Revoked = t0.Add(2 * time.Hour)
	_, err = s.RotateRefresh(ctx, hash("g1"), hash("g2"), t0.Add(3*time.Hour))
	is(t, "revoked family", err, ErrNotFound)
	list, err := s.ListFamilies(ctx, a.ID)
	ok(t, "ListFamilies", err)
	eq(t, "ListFamilies", list, []Family{f, g})
}

// testRotateRace rotates one token from many goroutines at once: exactly one wins, the others
// count as reuse and revoke the family, so the winner's new token is dead too.
func testRotateRace(t *testing.T, s accountStore) {
	ctx := t.Context()
	a := mustAccount(t, s, "race@example.com")
	const n = 16
	for round := range 3 {
		f := Family{ID: NewID(), AccountID: a.ID, Client: "race", Created: t0}
		old := hash(fmt.Sprint("race", round))
		ok(t, "CreateFamily", s.CreateFamily(ctx, f, old))
		start := make(chan struct{})
		errs := make(chan error, n)
		for i := range n {
			go func() {
				<-start
				_, err := s.RotateRefresh(ctx, old, hash(fmt.Sprint("new", round, i)), t0.Add(time.Minute))
				errs <- err
			}()
		}
		close(start)
		wins, reuses, gone := 0, 0, 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				wins++
			case errors.Is(err, ErrReused):
				reuses++
			case errors.Is(err, ErrNotFound):
				gone++
			default:
				t.Errorf("round %d: unexpected error %v", round, err)
			}
		}
		t.Logf("round %d: %d wins, %d reuses, %d after the revocation", round, wins, reuses, gone)
		if wins != 1 || reuses < 1 {
			t.Errorf("round %d: %d wins and %d reuses, want 1 and at least 1", round, wins, reuses)
		}
		list, err := s.ListFamilies(ctx, a.ID)
		ok(t, "ListFamilies", err)
		for _, r := range list {
			if r.ID == f.ID && r.Revoked.IsZero() {
				t.Errorf("round %d: family %+v not revoked", round, r)
			}
		}
	}
}

func testPruneRefresh(t *testing.T, s accountStore) {
	ctx := t.Context()
	a := mustAccount(t, s, "prune@example.com")
	f := Family{ID: NewID(), AccountID: a.ID, Client: "live", Created: t0}
	ok(t, "CreateFamily", s.CreateFamily(ctx, f, hash("p1")))
	for i, at := range []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour} {
		_, err := s.RotateRefresh(ctx, hash(fmt.Sprint("p", i+1)), hash(fmt.Sprint("p", i+2)), t0.Add(at))
		ok(t, "RotateRefresh", err)
	}
	g := Family{ID: NewID(), AccountID: a.ID, Client: "revoked", Created: t0}
	ok(t, "CreateFamily", s.CreateFamily(ctx, g, hash("q1")))
	ok(t, "RevokeFamily", s.RevokeFamily(ctx, a.ID, g.ID, t0.Add(time.Hour)))
	// Before 2h30: p1 and p2 (used at 1h and 2h), family g and its token q1.
	n, err := s.PruneRefresh(ctx, t0.Add(150*time.Minute))
	ok(t, "PruneRefresh", err)
	eq(t, "pruned", n, int64(3))
	_, err = s.RotateRefresh(ctx, hash("p1"), hash("x"), t0.Add(4*time.Hour))
	is(t, "pruned token", err, ErrNotFound)
	_, err = s.RotateRefresh(ctx, hash("p3"), hash("x"), t0.Add(4*time.Hour))
	is(t, "kept used token", err, ErrReused)
	list, err := s.ListFamilies(ctx, a.ID)
	ok(t, "ListFamilies", err)
	if len(list) != 1 || list[0].ID != f.ID {
		t.Errorf("families after prune: %+v, want only %s", list, f.ID)
	}
}
