package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/billing"
	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/store/pgtest"
	"github.com/codingplan/codingplan/backend/internal/tokens"
)

// testNow is the clock of every test: 2026-12-07T14:00:10Z, the time of billing's testdata.
var testNow = time.Unix(1796652010, 0).UTC()

const (
	stripeSecret = "whsec_newnewnewnewnewnewnewnewnewnew"
	polarSecret  = "whsec_q2Yc7vK9mPz3RtW8xLbN4hJdF6gS1aEo0uTiCk5" // Polar's legacy shape: keyed by its bytes
	testPassword = "correct horse battery staple"
)

var testPlans = billing.PlanMap{"price_1Pro": "pro", "e1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8": "pro", "price_1Team": "max"}

// testStore is a store the test can take down and bring back: while down, every call the
// server makes first answers store.ErrUnavailable (the SQLite stand-in for a database outage;
// the PostgreSQL test stops the real server).
type testStore struct {
	Store
	down atomic.Bool
}

func (s *testStore) fail() error {
	if s.down.Load() {
		return fmt.Errorf("store: test: %w", store.ErrUnavailable)
	}
	return nil
}

func (s *testStore) Version(ctx context.Context) (int64, error) {
	if err := s.fail(); err != nil {
		return 0, err
	}
	return s.Store.Version(ctx)
}
func (s *testStore) SessionByHash(ctx context.Context, h []byte) (store.Session, error) {
	if err := s.fail(); err != nil {
		return store.Session{}, err
	}
	return s.Store.SessionByHash(ctx, h)
}
func (s *testStore) AccountByEmail(ctx context.Context, e string) (store.Account, error) {
	if err := s.fail(); err != nil {
		return store.Account{}, err
	}
	return s.Store.AccountByEmail(ctx, e)
}
func (s *testStore) MarkEvent(ctx context.Context, p, id string, at time.Time) (bool, error) {
	if err := s.fail(); err != nil {
		return false, err
	}
	return s.Store.MarkEvent(ctx, p, id, at)
}

// full is the store's whole method set the tests use.
type full interface {
	Store
	tokens.Store
	CreateAccount(ctx context.Context, a store.Account) (store.Account, error)
	SetPassword(ctx context.Context, accountID, hash string) error
	ListAccounts(ctx context.Context) ([]store.Account, error)
	APIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error)
	Migrate(ctx context.Context) error
	Close() error
}

// dialects runs f once per store implementation: SQLite always, PostgreSQL when
// CODINGPLAN_TEST_POSTGRES names a server.
func dialects(t *testing.T, f func(t *testing.T, st full, pgDSN string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, sqliteStore(t), "") })
	t.Run("postgres", func(t *testing.T) {
		admin := pgtest.Admin(t)
		dsn := pgtest.NewDB(t, "accounts")
		st, err := store.OpenPostgres(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		f(t, st, admin)
	})
}

// sqliteStore is a migrated SQLite store in the test's temporary directory.
func sqliteStore(t *testing.T) full {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), t.TempDir()+"/accounts.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// rig is a server over a store, reached through httptest.
type rig struct {
	t     *testing.T
	st    full
	ts    *testStore
	srv   *httptest.Server
	clock *clock
	acct  store.Account // "ada@example.com", id acct_42, with testPassword
}

func newRig(t *testing.T, st full, edit func(*Options)) *rig {
	t.Helper()
	ck := &clock{t: testNow}
	settings := DefaultSettings()
	settings.StateDir = t.TempDir()
	ts := &testStore{Store: st}
	o := Options{
		Store: ts, Settings: settings, Plans: testPlans, Now: ck.Now,
		Webhooks: billing.NewWebhooks(billing.Config{
			StripeSecrets: []string{stripeSecret}, PolarSecrets: []string{polarSecret},
			Plans: testPlans, Now: ck.Now,
		}),
	}
	iss, err := tokens.New(st, tokens.Config{VerificationURI: settings.URL() + "/device", Now: ck.Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Keys = iss
	if edit != nil {
		edit(&o)
	}
	srv := httptest.NewServer(New(o))
	t.Cleanup(srv.Close)
	a, err := st.CreateAccount(t.Context(), store.Account{ID: "acct_42", Email: "ada@example.com", Name: "Ada", Plan: "pro", Created: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPassword(t.Context(), a.ID, HashPassword(testPassword)); err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, st: st, ts: ts, srv: srv, clock: ck, acct: a}
}

// client returns an HTTP client with its own cookie jar.
func (r *rig) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

type answer struct {
	code int
	h    http.Header
	body map[string]any
	raw  string
}

// do sends a request; body is JSON-encoded unless it is a string (sent as is, form-encoded).
func (r *rig) do(c *http.Client, method, path string, body any, hdr ...string) answer {
	r.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/x-www-form-urlencoded"
	case []byte:
		rd = strings.NewReader(string(b))
	default:
		j, _ := json.Marshal(b)
		rd, ct = strings.NewReader(string(j)), "application/json"
	}
	req, err := http.NewRequest(method, r.srv.URL+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, h: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// signIn signs c in as the rig's account.
func (r *rig) signIn(c *http.Client) {
	r.t.Helper()
	if a := r.do(c, "POST", "/v1/session", map[string]string{"email": "ada@example.com", "password": testPassword}); a.code != 200 {
		r.t.Fatalf("sign-in: %d %s", a.code, a.raw)
	}
}

func stripeSig(ts time.Time, body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.", ts.Unix())
	m.Write(body)
	return fmt.Sprintf("t=%d,v1=%s", ts.Unix(), hex.EncodeToString(m.Sum(nil)))
}

func polarHeaders(id string, ts time.Time, body []byte, secret string) []string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%s.%d.", id, ts.Unix())
	m.Write(body)
	return []string{"webhook-id", id, "webhook-timestamp", fmt.Sprint(ts.Unix()),
		"webhook-signature", "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))}
}

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../billing/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
