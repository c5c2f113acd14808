package store

import (
	"path/filepath"
	"testing"
)

func openSQLiteTest(t testing.TB) accountStore {
	t.Helper()
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T) { runSuite(t, openSQLiteTest) }

func TestSQLiteSchema(t *testing.T) { testSchema(t, openSQLiteTest(t)) }
