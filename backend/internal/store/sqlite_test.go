package store

import (
	"os"
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

// TestSQLitePath opens a file whose name has characters that mean something in a URI.
func TestSQLitePath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?with #odd %20 chars")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "accounts?.db")
	s, err := OpenSQLite(t.Context(), path)
	ok(t, "OpenSQLite", err)
	defer s.Close()
	ok(t, "Migrate", s.Migrate(t.Context()))
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %q: %v", path, err)
	}
}
