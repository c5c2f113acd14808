package tokens

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/store/pgtest"
)

// testStore is a real store with the methods the tests use to set things up and look.
type testStore interface {
	Store
	CreateAccount(ctx context.Context, a store.Account) (store.Account, error)
	UpdateAccount(ctx context.Context, a store.Account) error
	ListFamilies(ctx context.Context, accountID string) ([]store.Family, error)
	ListAPIKeys(ctx context.Context, accountID string) ([]store.APIKey, error)
	RevokeAPIKey(ctx context.Context, accountID, id string, at time.Time) error
}

// eachStore runs fn against SQLite, and against PostgreSQL when CODINGPLAN_TEST_POSTGRES names a
// server (each test then has a database of its own).
func eachStore(t *testing.T, fn func(t *testing.T, st testStore)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgres(t)) })
}

func openSQLite(t testing.TB) *store.SQLite {
	t.Helper()
	s, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// postgresDB creates a database of the test's own on the CODINGPLAN_TEST_POSTGRES server.
func postgresDB(t testing.TB) string { return pgtest.NewDB(t, "tokens") }

func openPostgresDSN(t testing.TB, dsn string) *store.Postgres {
	t.Helper()
	s, err := store.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func openPostgres(t testing.TB) *store.Postgres { return openPostgresDSN(t, postgresDB(t)) }

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

const verifyURI = "https://accounts.example.com/device"

func newIssuer(t testing.TB, st Store, clk *clock) *Issuer {
	t.Helper()
	cfg := Config{VerificationURI: verifyURI}
	if clk != nil {
		cfg.Now = clk.Now
	}
	i, err := New(st, cfg, discard())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return i
}

func newAccount(t testing.TB, st testStore, email, plan string) store.Account {
	t.Helper()
	a, err := st.CreateAccount(t.Context(), store.Account{Email: email, Plan: plan})
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return a
}

// verifier is the routing plane's verifier, reading the issuer's JWKS over HTTP as a backend
// node does; refetch 0 is the backend's default.
func verifier(t testing.TB, h http.Handler, clk *clock, refetch time.Duration) *auth.Verifier {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	v, err := auth.NewVerifier(t.Context(), auth.Config{JWKS: srv.URL + "/.well-known/jwks.json",
		Now: clk.Now, Refetch: refetch}, discard())
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// answer is a decoded JSON answer of the token or device endpoint.
type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) str(k string) string { s, _ := a.body[k].(string); return s }
func (a answer) num(k string) int64  { f, _ := a.body[k].(float64); return int64(f) }

// post sends a form to the handler.
func post(t testing.TB, h http.Handler, path string, form url.Values) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, h, req)
}

func do(t testing.TB, h http.Handler, req *http.Request) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	data, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, header: res.Header}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(data, &a.body); err != nil {
			t.Fatalf("%s: answer is not JSON: %v: %q", req.URL.Path, err, data)
		}
	}
	return a
}

// wantError checks an OAuth error answer.
func wantError(t testing.TB, what string, a answer, status int, code string) {
	t.Helper()
	if a.status != status || a.str("error") != code {
		t.Fatalf("%s: got %d %v, want %d %s", what, a.status, a.body, status, code)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", what, a.header.Get("Cache-Control"))
	}
	if _, ok := a.body["access_token"]; ok {
		t.Errorf("%s: an error answer carries a token", what)
	}
}

func wantTokens(t testing.TB, what string, a answer, refresh bool) {
	t.Helper()
	if a.status != http.StatusOK || a.str("access_token") == "" || a.str("token_type") != "Bearer" {
		t.Fatalf("%s: got %d %v, want tokens", what, a.status, a.body)
	}
	if got := a.str("refresh_token") != ""; got != refresh {
		t.Fatalf("%s: refresh token given %v, want %v", what, got, refresh)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", what, a.header.Get("Cache-Control"))
	}
}

func refreshForm(tok string) url.Values {
	return url.Values{"grant_type": {GrantRefresh}, "refresh_token": {tok}}
}

func deviceForm(code, client string) url.Values {
	return url.Values{"grant_type": {GrantDeviceCode}, "device_code": {code}, "client_id": {client}}
}

// jsonSegment decodes one segment of a JWT.
func jsonSegment(seg string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(seg) }
