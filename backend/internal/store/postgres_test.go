package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store/pgtest"
)

// postgresTestDB creates a database of the test's own on the test server and returns its DSN.
func postgresTestDB(t testing.TB) string { return pgtest.NewDB(t, "store") }

func openPostgresDSN(t testing.TB, dsn string) *Postgres {
	t.Helper()
	s, err := OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openPostgresTest opens a store on a new database of the test's own.
func openPostgresTest(t testing.TB) accountStore {
	t.Helper()
	return openPostgresDSN(t, postgresTestDB(t))
}

func TestPostgresConcurrentMigrate(t *testing.T) {
	dsn := postgresTestDB(t)
	testConcurrentMigrate(t, openPostgresDSN(t, dsn), openPostgresDSN(t, dsn))
}

func TestPostgres(t *testing.T) { runSuite(t, openPostgresTest) }

func TestPostgresSchema(t *testing.T) { testSchema(t, openPostgresTest(t)) }

// TestPostgresOutage stops a private cluster under an open store: calls fail with ErrUnavailable
// within their context's deadline, and succeed again once the cluster is back, with the same
// store. It uses a cluster of its own so that other tests' server stays up.
func TestPostgresOutage(t *testing.T) {
	pgtest.Admin(t)
	port := freePort(t)
	script := func(args ...string) {
		t.Helper()
		cmd := exec.Command("../../../scripts/postgres.sh", args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("postgres.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	script("start", port)
	t.Cleanup(func() { script("stop", port) })

	ctx := t.Context()
	s, err := OpenPostgres(ctx, "postgres://postgres@127.0.0.1:"+port+"/postgres?sslmode=disable")
	ok(t, "OpenPostgres", err)
	defer s.Close()
	ok(t, "Migrate", s.Migrate(ctx))
	a := mustAccount(t, s, "outage@example.com")
	ok(t, "CreateFamily", s.CreateFamily(ctx, Family{ID: NewID(), AccountID: a.ID, Created: t0}, hash("o1")))

	script("halt", port)
	const deadline = 3 * time.Second
	calls := map[string]func(context.Context) error{
		"Account":      func(ctx context.Context) error { _, err := s.Account(ctx, a.ID); return err },
		"ListAccounts": func(ctx context.Context) error { _, err := s.ListAccounts(ctx); return err },
		"CreateAccount": func(ctx context.Context) error {
			_, err := s.CreateAccount(ctx, Account{Email: "new@example.com", Created: t0})
			return err
		},
		"RotateRefresh": func(ctx context.Context) error {
			_, err := s.RotateRefresh(ctx, hash("o1"), hash("o2"), t0)
			return err
		},
		"MarkEvent": func(ctx context.Context) error { _, err := s.MarkEvent(ctx, "stripe", "e", t0); return err },
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		start := time.Now()
		err := call(ctx)
		took := time.Since(start)
		cancel()
		t.Logf("%s while down: %v after %v", name, err, took)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s while down: got %v, want ErrUnavailable", name, err)
		}
		if took > deadline+time.Second {
			t.Errorf("%s while down took %v, want at most the %v deadline", name, took, deadline)
		}
	}

	script("start", port)
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err := call(ctx)
		cancel()
		if err != nil {
			t.Errorf("%s after restart: %v", name, err)
		}
	}
	got, err := s.Account(ctx, a.ID)
	ok(t, "Account after restart", err)
	eq(t, "account kept", got, a)
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}
