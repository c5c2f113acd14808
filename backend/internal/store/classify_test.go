package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestPostgresClass(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, c := range []struct {
		err  error
		want error
	}{
		{&pgconn.PgError{Code: "23505"}, ErrExists},
		{&pgconn.PgError{Code: "23503"}, ErrNotFound},
		{&pgconn.PgError{Code: "23502"}, ErrInvalid},
		{&pgconn.PgError{Code: "23514"}, ErrInvalid},
		{&pgconn.PgError{Code: "08006"}, ErrUnavailable},
		{&pgconn.PgError{Code: "57P01"}, ErrUnavailable},
		{&pgconn.PgError{Code: "57P03"}, ErrUnavailable},
		{&pgconn.PgError{Code: "40P01"}, ErrUnavailable},
		{fmt.Errorf("query: %w", &pgconn.PgError{Code: "42P01"}), nil}, // undefined table: a bug, not an outage
		{fmt.Errorf("dial: %w", refused), ErrUnavailable},
		{pgconn.ErrConnClosed, ErrUnavailable},
		{driver.ErrBadConn, ErrUnavailable},
		{io.ErrUnexpectedEOF, ErrUnavailable},
		{context.DeadlineExceeded, ErrUnavailable},
		{context.Canceled, nil},
		{errors.New("something else"), nil},
	} {
		if got := postgresClass(c.err); got != c.want {
			t.Errorf("postgresClass(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestFailWraps(t *testing.T) {
	e := &engine{classify: postgresClass}
	err := e.fail("account", fmt.Errorf("dial: %w", context.DeadlineExceeded))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("fail kept %v, want both ErrUnavailable and the cause", err)
	}
	if err := e.fail("account", nil); err != nil {
		t.Errorf("fail(nil) = %v", err)
	}
	err = e.fail("rotate refresh", ErrReused)
	if !errors.Is(err, ErrReused) || err.Error() != "store: rotate refresh: refresh token reused" {
		t.Errorf("fail(ErrReused) = %q", err)
	}
}
