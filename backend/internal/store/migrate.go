package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations
var migrations embed.FS

const (
	dialectSQLite   = goose.DialectSQLite3
	dialectPostgres = goose.DialectPostgres
)

// provider builds a goose provider over the dialect's numbered migrations. It uses no global
// state, so two stores in one process (tests) do not interfere; on PostgreSQL an advisory lock
// makes concurrent migrations from several instances wait for each other.
func provider(db *sql.DB, d goose.Dialect) (*goose.Provider, error) {
	dir := "migrations/sqlite"
	var opts []goose.ProviderOption
	if d == dialectPostgres {
		dir = "migrations/postgres"
		// Poll for the lock every second (goose's default is 5 s) for up to 5 minutes: our
		// migrations take well under a second, so a waiting instance goes on sooner.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(d, db, sub, opts...)
}

func migrate(ctx context.Context, db *sql.DB, d goose.Dialect, e *engine) error {
	p, err := provider(db, d)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return e.fail("migrate", err)
	}
	return nil
}

func version(ctx context.Context, db *sql.DB, d goose.Dialect, e *engine) (int64, error) {
	p, err := provider(db, d)
	if err != nil {
		return 0, fmt.Errorf("store: version: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, e.fail("version", err)
	}
	return v, nil
}
