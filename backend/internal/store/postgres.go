package store

import (
	"context"
	"crypto/tls"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Postgres is the store in PostgreSQL, for production.
type Postgres struct {
	engine
	pool *pgxpool.Pool
}

// defaultConnectTimeout bounds a connection attempt when the DSN sets no connect_timeout, so that
// an unreachable server turns into ErrUnavailable even for a caller without a deadline.
const defaultConnectTimeout = 5 * time.Second

// OpenPostgres connects a pool to the database the DSN names (a URL or key=value string; TLS as
// its sslmode, sslrootcert and friends say). It does not migrate: call Migrate. Connections are
// made lazily, so a database that is down at start only makes calls fail with ErrUnavailable
// until it is back.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err) // the DSN may hold a password: not echoed
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	// database/sql over the pool (no idle connections of its own): one engine serves both
	// dialects, and the pool keeps pgx's health checks.
	db := stdlib.OpenDBFromPool(pool)
	return &Postgres{engine{db: db, q: postgresQueries(), arg: postgresTime, classify: postgresClass}, pool}, nil
}

// Close closes the pool.
func (p *Postgres) Close() error {
	err := p.db.Close()
	p.pool.Close()
	return err
}

// Migrate applies every migration not yet applied, under an advisory lock.
func (p *Postgres) Migrate(ctx context.Context) error {
	return migrate(ctx, p.db, dialectPostgres, &p.engine)
}

// Version returns the schema version applied (0 for an empty database).
func (p *Postgres) Version(ctx context.Context) (int64, error) {
	return version(ctx, p.db, dialectPostgres, &p.engine)
}

func postgresTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func postgresClass(err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case pg.Code == "23505": // unique_violation
			return ErrExists
		case pg.Code == "23503": // foreign_key_violation
			return ErrNotFound
		case pg.Code == "23502", pg.Code == "23514": // not_null_violation, check_violation
			return ErrInvalid
		case strings.HasPrefix(pg.Code, "08"), // connection exception
			pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03", // shutting down, starting up
			pg.Code == "53300", // too many connections
			// Transient: a deadlock between cascading deletes and a rotation, or a
			// serialization failure. The caller's retry succeeds.
			pg.Code == "40001", pg.Code == "40P01":
			return ErrUnavailable
		}
		return nil
	}
	// A server certificate that does not verify (wrong CA, wrong host name) is a configuration
	// error that waiting does not mend: not ErrUnavailable, so that serve stops at start.
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return nil
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), pgconn.Timeout(err),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, context.DeadlineExceeded):
		return ErrUnavailable
	}
	return nil
}
