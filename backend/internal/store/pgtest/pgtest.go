// Package pgtest gives tests a PostgreSQL database of their own on the server that make test
// starts (scripts/postgres.sh): CODINGPLAN_TEST_POSTGRES names it, as a DSN of a user that may
// create databases.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Admin returns the DSN of the test server. Without one it skips the test, or fails it when
// CODINGPLAN_REQUIRE_POSTGRES=1.
func Admin(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("CODINGPLAN_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CODINGPLAN_REQUIRE_POSTGRES") == "1" {
			t.Fatal("CODINGPLAN_TEST_POSTGRES is not set but CODINGPLAN_REQUIRE_POSTGRES=1")
		}
		t.Skip("CODINGPLAN_TEST_POSTGRES not set (scripts/postgres.sh start, then point it at the server)")
	}
	return dsn
}

// NewDB creates a database named prefix_<random> on the test server and returns its DSN; the
// database is dropped when the test ends (after what the test opened later is closed).
func NewDB(t testing.TB, prefix string) string {
	t.Helper()
	admin := Admin(t)
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("CODINGPLAN_TEST_POSTGRES: %v", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := prefix + "_" + hex.EncodeToString(b[:])
	exec := func(sql string) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Fatalf("connect %s: %v", u.Redacted(), err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	quoted := pgx.Identifier{name}.Sanitize()
	exec("CREATE DATABASE " + quoted)
	t.Cleanup(func() { exec("DROP DATABASE " + quoted + " WITH (FORCE)") })
	u.Path = "/" + name
	return u.String()
}
