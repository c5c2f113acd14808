package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Device codes, sessions, signing keys, webhook events, usage, and the whole-database views.

func scanDevice(r rowScanner) (DeviceCode, error) {
	var d DeviceCode
	var ms int64
	err := r.Scan(&d.Hash, &d.UserCode, &d.Client, scanTime{&d.Created}, scanTime{&d.Expires},
		scanTime{&d.LastPoll}, &ms, scanText{&d.AccountID}, &d.Denied)
	d.Interval = time.Duration(ms) * time.Millisecond
	return d, err
}

// CreateDeviceCode stores a pending device authorization. ErrExists when the user code (or the
// hash) is taken.
func (e *engine) CreateDeviceCode(ctx context.Context, d DeviceCode) error {
	if len(d.Hash) == 0 || d.UserCode == "" {
		return e.fail("create device code", fmt.Errorf("%w: device code without hash or user code", ErrInvalid))
	}
	var account any // NULL until approved
	if d.AccountID != "" {
		account = d.AccountID
	}
	_, err := e.db.ExecContext(ctx, e.q.insertDevice, d.Hash, d.UserCode, d.Client,
		e.arg(micro(d.Created)), e.arg(micro(d.Expires)), e.arg(micro(d.LastPoll)),
		d.Interval.Milliseconds(), account, d.Denied)
	return e.fail("create device code", err)
}

// DeviceByUserCode finds a device authorization by the code the user typed (expired ones too).
func (e *engine) DeviceByUserCode(ctx context.Context, code string) (DeviceCode, error) {
	d, err := scanDevice(e.db.QueryRowContext(ctx, e.q.deviceByUserCode, code))
	return d, e.fail("device by user code", err)
}

// DeviceByHash finds a device authorization by the hash of its device_code (expired ones too).
func (e *engine) DeviceByHash(ctx context.Context, hash []byte) (DeviceCode, error) {
	d, err := scanDevice(e.db.QueryRowContext(ctx, e.q.deviceByHash, hash))
	return d, e.fail("device by hash", err)
}

// ApproveDevice grants the pending authorization to the account. Approving again for the same
// account is a no-op; ErrExists when it was denied or approved for another account; ErrNotFound
// when there is no such user code or account. Expiry is the caller's to check.
func (e *engine) ApproveDevice(ctx context.Context, userCode, accountID string) error {
	if accountID == "" {
		return e.fail("approve device", fmt.Errorf("%w: approval without account", ErrInvalid))
	}
	err := e.exec(ctx, "approve device", e.q.approveDevice, userCode, accountID)
	if !isNotFound(err) {
		return err
	}
	d, err := e.DeviceByUserCode(ctx, userCode)
	switch {
	case err != nil:
		return e.fail("approve device", err)
	case !d.Denied && d.AccountID == accountID:
		return nil
	case !d.Denied && d.AccountID == "": // still pending: the account does not exist
		return e.fail("approve device", fmt.Errorf("%w: account %q", ErrNotFound, accountID))
	}
	return e.fail("approve device", fmt.Errorf("%w: device code already decided", ErrExists))
}

// DenyDevice refuses the pending authorization (denying twice is a no-op). ErrExists when it was
// already approved, ErrNotFound when there is no such user code.
func (e *engine) DenyDevice(ctx context.Context, userCode string) error {
	err := e.exec(ctx, "deny device", e.q.denyDevice, userCode)
	if !isNotFound(err) {
		return err
	}
	if _, err := e.DeviceByUserCode(ctx, userCode); err != nil {
		return e.fail("deny device", err)
	}
	return e.fail("deny device", fmt.Errorf("%w: device code already approved", ErrExists))
}

// PollDevice records a poll at the given time with the interval now in force and returns the
// authorization as it was before this poll, so that the caller can tell a poll that came too early
// (slow_down) from one that did not.
func (e *engine) PollDevice(ctx context.Context, hash []byte, at time.Time, interval time.Duration) (DeviceCode, error) {
	var before DeviceCode
	err := e.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if before, err = scanDevice(tx.QueryRowContext(ctx, e.q.lockDevice, hash)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, e.q.pollDevice, hash, e.arg(micro(at)), interval.Milliseconds())
		return err
	})
	if err != nil {
		return DeviceCode{}, e.fail("poll device", err)
	}
	return before, nil
}

// DeleteDevice removes a device authorization (after its token was issued); a missing one is not
// an error.
func (e *engine) DeleteDevice(ctx context.Context, hash []byte) error {
	_, err := e.db.ExecContext(ctx, e.q.deleteDevice, hash)
	return e.fail("delete device", err)
}

// DeleteExpired removes device codes, web sessions and mailed links whose expiry is at or before now, and
// returns how many rows went.
func (e *engine) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []string{e.q.expireDevices, e.q.expireSessions, e.q.expireEmailTokens} {
		res, err := e.db.ExecContext(ctx, q, e.arg(micro(now)))
		if err != nil {
			return total, e.fail("delete expired", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, e.fail("delete expired", err)
		}
		total += n
	}
	return total, nil
}

// Web sessions.

// CreateSession stores a web session. ErrNotFound when the account does not exist.
func (e *engine) CreateSession(ctx context.Context, s Session) error {
	if len(s.Hash) == 0 {
		return e.fail("create session", fmt.Errorf("%w: session without hash", ErrInvalid))
	}
	_, err := e.db.ExecContext(ctx, e.q.insertSession, s.Hash, s.AccountID, e.arg(micro(s.Created)),
		e.arg(micro(s.Expires)))
	return e.fail("create session", err)
}

// SessionByHash finds a session, expired or not, by the hash of its cookie.
func (e *engine) SessionByHash(ctx context.Context, hash []byte) (Session, error) {
	var s Session
	err := e.db.QueryRowContext(ctx, e.q.sessionByHash, hash).Scan(&s.Hash, &s.AccountID,
		scanTime{&s.Created}, scanTime{&s.Expires})
	return s, e.fail("session by hash", err)
}

// DeleteSession signs a session out; a missing one is not an error.
func (e *engine) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := e.db.ExecContext(ctx, e.q.deleteSession, hash)
	return e.fail("delete session", err)
}

// Signing keys.

// AddSigningKey stores a new signing key. ErrExists when its kid is taken.
func (e *engine) AddSigningKey(ctx context.Context, k SigningKey) error {
	if k.ID == "" || len(k.Private) == 0 {
		return e.fail("add signing key", fmt.Errorf("%w: signing key without id or seed", ErrInvalid))
	}
	_, err := e.db.ExecContext(ctx, e.q.insertSigningKey, k.ID, k.Private, e.arg(micro(k.Created)),
		e.arg(micro(k.Retired)))
	return e.fail("add signing key", err)
}

// SigningKeys returns every key, retired ones too, oldest first.
func (e *engine) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := e.db.QueryContext(ctx, e.q.signingKeys)
	if err != nil {
		return nil, e.fail("signing keys", err)
	}
	return collect(rows, func(r rowScanner) (SigningKey, error) {
		var k SigningKey
		err := r.Scan(&k.ID, &k.Private, scanTime{&k.Created}, scanTime{&k.Retired})
		return k, err
	}, e, "signing keys")
}

// RetireSigningKey stops a key from signing (it keeps verifying until the caller deletes it).
func (e *engine) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	return e.exec(ctx, "retire signing key", e.q.retireSigningKey, id, e.arg(micro(at)))
}

// DeleteSigningKey removes a key for good, once no token it signed can still be valid.
// ErrNotFound when there is no such key.
func (e *engine) DeleteSigningKey(ctx context.Context, id string) error {
	return e.exec(ctx, "delete signing key", e.q.deleteSigningKey, id)
}

// Webhook events.

// MarkEvent records a provider's webhook event id; fresh is false when it was seen before.
func (e *engine) MarkEvent(ctx context.Context, provider, eventID string, at time.Time) (bool, error) {
	res, err := e.db.ExecContext(ctx, e.q.markEvent, provider, eventID, e.arg(micro(at)))
	if err != nil {
		return false, e.fail("mark event", err)
	}
	n, err := res.RowsAffected()
	return n == 1, e.fail("mark event", err)
}

// PruneEvents forgets webhook event ids received before the given time (older than any replay
// a provider's signature tolerance lets through) and returns how many went.
func (e *engine) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	res, err := e.db.ExecContext(ctx, e.q.pruneEvents, e.arg(micro(before)))
	if err != nil {
		return 0, e.fail("prune events", err)
	}
	n, err := res.RowsAffected()
	return n, e.fail("prune events", err)
}

// Usage.

// AddUsage adds to the account's counts for a day (YYYY-MM-DD). ErrNotFound when the account does
// not exist.
func (e *engine) AddUsage(ctx context.Context, accountID, day string, requests, tokens int64) error {
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return e.fail("add usage", fmt.Errorf("%w: day %q", ErrInvalid, day))
	}
	_, err := e.db.ExecContext(ctx, e.q.addUsage, accountID, day, requests, tokens)
	return e.fail("add usage", err)
}

// Usage returns the account's daily counts, oldest day first.
func (e *engine) Usage(ctx context.Context, accountID string) ([]UsageDay, error) {
	rows, err := e.db.QueryContext(ctx, e.q.usage, accountID)
	if err != nil {
		return nil, e.fail("usage", err)
	}
	return collect(rows, func(r rowScanner) (UsageDay, error) {
		var u UsageDay
		err := r.Scan(&u.AccountID, &u.Day, &u.Requests, &u.Tokens)
		return u, err
	}, e, "usage")
}

// The whole database, for exports, audits and tests.

// Row is one row of one table with every value as text: bytes in hex, times as the driver gives
// them, NULL as "".
type Row struct {
	Table  string
	Values map[string]string
}

// Columns returns every table of the schema (the migration bookkeeping table too) with its
// columns in order.
func (e *engine) Columns(ctx context.Context) (map[string][]string, error) {
	tables, err := e.list(ctx, e.q.tables)
	if err != nil {
		return nil, e.fail("columns", err)
	}
	out := make(map[string][]string, len(tables))
	for _, t := range tables {
		if out[t], err = e.list(ctx, e.q.columns, t); err != nil {
			return nil, e.fail("columns", err)
		}
	}
	return out, nil
}

// Dump returns every row of every table.
func (e *engine) Dump(ctx context.Context) ([]Row, error) {
	tables, err := e.list(ctx, e.q.tables)
	if err != nil {
		return nil, e.fail("dump", err)
	}
	var out []Row
	for _, t := range tables {
		rows, err := e.db.QueryContext(ctx, `SELECT * FROM `+quoteIdent(t))
		if err != nil {
			return nil, e.fail("dump", err)
		}
		got, err := dumpRows(t, rows)
		if err != nil {
			return nil, e.fail("dump", err)
		}
		out = append(out, got...)
	}
	return out, nil
}

func dumpRows(table string, rows *sql.Rows) ([]Row, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []Row
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := Row{Table: table, Values: make(map[string]string, len(cols))}
		for i, c := range cols {
			r.Values[c] = text(vals[i])
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case []byte:
		return hex.EncodeToString(v)
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// list runs a query whose rows are one text column.
func (e *engine) list(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := e.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r rowScanner) (string, error) {
		var s string
		err := r.Scan(&s)
		return s, err
	}, e, "list")
}

// quoteIdent quotes an identifier for both dialects.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
