package store

import (
	"path/filepath"
	"testing"
)

// testConcurrentMigrate migrates one database from two stores at once, as two instances of the
// account service starting together do: both succeed and the schema is there once.
func testConcurrentMigrate(t *testing.T, a, b accountStore) {
	errs := make(chan error, 2)
	for _, s := range []accountStore{a, b} {
		go func() { errs <- s.Migrate(t.Context()) }()
	}
	for range 2 {
		ok(t, "Migrate", <-errs)
	}
	for _, s := range []accountStore{a, b} {
		v, err := s.Version(t.Context())
		ok(t, "Version", err)
		eq(t, "version", v, int64(2))
	}
	_, err := a.CreateAccount(t.Context(), Account{Email: "m@example.com", Created: t0})
	ok(t, "CreateAccount", err)
}

func TestSQLiteConcurrentMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.db")
	var stores []accountStore
	for range 2 {
		s, err := OpenSQLite(t.Context(), path)
		ok(t, "OpenSQLite", err)
		defer s.Close()
		stores = append(stores, s)
	}
	testConcurrentMigrate(t, stores[0], stores[1])
}
