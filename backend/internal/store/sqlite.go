package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite is the store in one SQLite file, for `make run` and single-machine installs.
type SQLite struct {
	engine
}

// OpenSQLite opens (creating it if needed) the database file at path in WAL mode with a busy
// timeout and foreign keys on. It does not migrate: call Migrate.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "10000") // milliseconds a writer waits for the write lock
	q.Set("_foreign_keys", "1")     // ON DELETE CASCADE needs it, per connection
	q.Set("_synchronous", "NORMAL") // the usual pairing with WAL: durable at checkpoints
	q.Set("_txlock", "immediate")   // transactions take the write lock at BEGIN (RotateRefresh)
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	s := &SQLite{engine{db: db, q: sqliteQueries(), arg: sqliteTime, classify: sqliteClass}}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, s.fail("open sqlite", err)
	}
	return s, nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// Migrate applies every migration not yet applied.
func (s *SQLite) Migrate(ctx context.Context) error {
	return migrate(ctx, s.db, dialectSQLite, &s.engine)
}

// Version returns the schema version applied (0 for an empty database).
func (s *SQLite) Version(ctx context.Context) (int64, error) {
	return version(ctx, s.db, dialectSQLite, &s.engine)
}

// sqliteTime stores times as Unix microseconds, NULL for the zero time.
func sqliteTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func sqliteClass(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return ErrExists
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return ErrNotFound
	case sqlite3.SQLITE_CONSTRAINT_NOTNULL, sqlite3.SQLITE_CONSTRAINT_CHECK:
		return ErrInvalid
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY:
		return ErrUnavailable
	}
	return nil
}
