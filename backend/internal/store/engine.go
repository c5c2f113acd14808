package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// engine is the method set both implementations share: database/sql over the dialect's driver,
// with that dialect's statements, time encoding and error classification.
type engine struct {
	db *sql.DB
	q  queries
	// arg turns a time into the parameter the dialect stores (nil for the zero time).
	arg func(time.Time) any
	// classify names the sentinel a driver error means (ErrExists, ErrNotFound, ErrUnavailable),
	// or returns nil.
	classify func(error) error
}

type rowScanner interface{ Scan(dest ...any) error }

// fail wraps a driver error with the operation and the sentinel it means.
func (e *engine) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s: %w", op, ErrNotFound)
	}
	for _, s := range []error{ErrNotFound, ErrExists, ErrReused, ErrUnavailable, ErrInvalid} {
		if errors.Is(err, s) {
			return fmt.Errorf("store: %s: %w", op, err)
		}
	}
	if s := e.classify(err); s != nil {
		return fmt.Errorf("store: %s: %w: %w", op, s, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// exec runs a statement that must change exactly the rows it names: none means ErrNotFound.
func (e *engine) exec(ctx context.Context, op, query string, args ...any) error {
	res, err := e.db.ExecContext(ctx, query, args...)
	if err != nil {
		return e.fail(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return e.fail(op, err)
	} else if n == 0 {
		return e.fail(op, ErrNotFound)
	}
	return nil
}

// tx runs fn in a transaction and commits it when fn returns nil.
func (e *engine) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Accounts.

func scanAccount(r rowScanner) (Account, error) {
	var a Account
	err := r.Scan(&a.ID, &a.Email, &a.Name, scanTime{&a.Created}, &a.Plan, &a.Status,
		&a.BillingProvider, &a.CustomerID, &a.SubscriptionID, scanTime{&a.BillingUpdated})
	return a, err
}

// CreateAccount stores a new account and returns it as stored. An empty ID is generated, an empty
// Status is "active" and a zero Created is now. ErrExists when the email (case-insensitively) or
// the billing customer is taken.
func (e *engine) CreateAccount(ctx context.Context, a Account) (Account, error) {
	if a.ID == "" {
		a.ID = NewID()
	}
	if a.Status == "" {
		a.Status = StatusActive
	}
	if a.Created.IsZero() {
		a.Created = time.Now()
	}
	a.Created, a.BillingUpdated = micro(a.Created), micro(a.BillingUpdated)
	if err := checkAccount(a); err != nil {
		return Account{}, e.fail("create account", err)
	}
	_, err := e.db.ExecContext(ctx, e.q.insertAccount, a.ID, a.Email, emailKey(a.Email), a.Name,
		e.arg(a.Created), a.Plan, a.Status, a.BillingProvider, a.CustomerID, a.SubscriptionID,
		e.arg(a.BillingUpdated))
	if err != nil {
		return Account{}, e.fail("create account", err)
	}
	return a, nil
}

// Account returns the account with this id.
func (e *engine) Account(ctx context.Context, id string) (Account, error) {
	a, err := scanAccount(e.db.QueryRowContext(ctx, e.q.accountByID, id))
	return a, e.fail("account", err)
}

// AccountByEmail finds an account by email, case-insensitively.
func (e *engine) AccountByEmail(ctx context.Context, email string) (Account, error) {
	a, err := scanAccount(e.db.QueryRowContext(ctx, e.q.accountByEmail, emailKey(email)))
	return a, e.fail("account by email", err)
}

// AccountByCustomer finds the account a billing provider's customer id belongs to.
func (e *engine) AccountByCustomer(ctx context.Context, provider, customerID string) (Account, error) {
	a, err := scanAccount(e.db.QueryRowContext(ctx, e.q.accountByCustomer, provider, customerID))
	return a, e.fail("account by customer", err)
}

// ListAccounts returns every account, oldest first.
func (e *engine) ListAccounts(ctx context.Context) ([]Account, error) {
	rows, err := e.db.QueryContext(ctx, e.q.listAccounts)
	if err != nil {
		return nil, e.fail("list accounts", err)
	}
	return collect(rows, scanAccount, e, "list accounts")
}

// UpdateAccount writes every field of the account but ID and Created. ErrNotFound when there is
// no such account; ErrExists when the new email or billing customer belongs to another.
func (e *engine) UpdateAccount(ctx context.Context, a Account) error {
	if err := checkAccount(a); err != nil {
		return e.fail("update account", err)
	}
	return e.exec(ctx, "update account", e.q.updateAccount, a.ID, a.Email, emailKey(a.Email),
		a.Name, a.Plan, a.Status, a.BillingProvider, a.CustomerID, a.SubscriptionID,
		e.arg(micro(a.BillingUpdated)))
}

// UpdateBilling applies a billing provider's view of the account (Plan, Status, BillingProvider,
// CustomerID, SubscriptionID) as of the event time BillingUpdated, atomically and only when that
// time is after the last one applied: applied is false for an event older than (or as old as) the
// state already stored, which is then left alone. ErrNotFound when there is no such account.
func (e *engine) UpdateBilling(ctx context.Context, a Account) (applied bool, err error) {
	if !validStatus(a.Status) || a.BillingUpdated.IsZero() {
		return false, e.fail("update billing", fmt.Errorf("%w: billing update with status %q at %v",
			ErrInvalid, a.Status, a.BillingUpdated))
	}
	err = e.exec(ctx, "update billing", e.q.updateBilling, a.ID, a.Plan, a.Status,
		a.BillingProvider, a.CustomerID, a.SubscriptionID, e.arg(micro(a.BillingUpdated)))
	if !isNotFound(err) {
		return err == nil, err
	}
	if _, err := e.Account(ctx, a.ID); err != nil {
		return false, err
	}
	return false, nil
}

// DeleteAccount removes the account and every row about it: password, API keys, sign-ins and
// their refresh tokens, web sessions, device codes it approved, usage counts.
func (e *engine) DeleteAccount(ctx context.Context, id string) error {
	return e.exec(ctx, "delete account", e.q.deleteAccount, id)
}

// SetPassword stores (or replaces) the account's password hash (argon2id, encoded by the caller).
func (e *engine) SetPassword(ctx context.Context, accountID, hash string) error {
	_, err := e.db.ExecContext(ctx, e.q.setPassword, accountID, hash)
	return e.fail("set password", err)
}

// PasswordHash returns the account's password hash; ErrNotFound when it has none.
func (e *engine) PasswordHash(ctx context.Context, accountID string) (string, error) {
	var h string
	err := e.db.QueryRowContext(ctx, e.q.passwordHash, accountID).Scan(&h)
	return h, e.fail("password hash", err)
}

// collect reads every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(rowScanner) (T, error), e *engine, op string) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, e.fail(op, err)
		}
		out = append(out, v)
	}
	return out, e.fail(op, rows.Err())
}

// API keys.

func scanAPIKey(r rowScanner) (APIKey, error) {
	var k APIKey
	err := r.Scan(&k.ID, &k.AccountID, &k.Name, &k.Prefix, &k.Hash, scanTime{&k.Created},
		scanTime{&k.LastUsed}, scanTime{&k.Revoked})
	return k, err
}

// CreateAPIKey stores a key; the caller chooses its ID (NewID). ErrNotFound when the account does
// not exist, ErrExists when the id or hash is taken.
func (e *engine) CreateAPIKey(ctx context.Context, k APIKey) error {
	if k.ID == "" || len(k.Hash) == 0 {
		return e.fail("create api key", fmt.Errorf("%w: api key without id or hash", ErrInvalid))
	}
	_, err := e.db.ExecContext(ctx, e.q.insertAPIKey, k.ID, k.AccountID, k.Name, k.Prefix, k.Hash,
		e.arg(micro(k.Created)), e.arg(micro(k.LastUsed)), e.arg(micro(k.Revoked)))
	return e.fail("create api key", err)
}

// APIKeyByHash finds a key, revoked or not, by its hash.
func (e *engine) APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error) {
	k, err := scanAPIKey(e.db.QueryRowContext(ctx, e.q.apiKeyByHash, hash))
	return k, e.fail("api key by hash", err)
}

// TouchAPIKey records when the key was last used.
func (e *engine) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	return e.exec(ctx, "touch api key", e.q.touchAPIKey, id, e.arg(micro(at)))
}

// ListAPIKeys returns the account's keys, revoked ones too, oldest first.
func (e *engine) ListAPIKeys(ctx context.Context, accountID string) ([]APIKey, error) {
	rows, err := e.db.QueryContext(ctx, e.q.listAPIKeys, accountID)
	if err != nil {
		return nil, e.fail("list api keys", err)
	}
	return collect(rows, scanAPIKey, e, "list api keys")
}

// RevokeAPIKey revokes the account's key at the given time (a second revocation keeps the first
// time). ErrNotFound when the account has no such key.
func (e *engine) RevokeAPIKey(ctx context.Context, accountID, id string, at time.Time) error {
	return e.exec(ctx, "revoke api key", e.q.revokeAPIKey, accountID, id, e.arg(micro(at)))
}

// Refresh-token families.

func scanFamily(r rowScanner) (Family, error) {
	var f Family
	err := r.Scan(&f.ID, &f.AccountID, &f.Client, scanTime{&f.Created}, scanTime{&f.LastUsed},
		scanTime{&f.Revoked})
	return f, err
}

// CreateFamily starts a sign-in whose current refresh token has the given hash; the caller
// chooses the family's ID (NewID).
func (e *engine) CreateFamily(ctx context.Context, f Family, tokenHash []byte) error {
	if f.ID == "" || len(tokenHash) == 0 {
		return e.fail("create family", fmt.Errorf("%w: family without id or token", ErrInvalid))
	}
	err := e.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, e.q.insertFamily, f.ID, f.AccountID, f.Client,
			e.arg(micro(f.Created)), e.arg(micro(f.LastUsed)), e.arg(micro(f.Revoked))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, e.q.insertRefresh, tokenHash, f.ID, e.arg(micro(f.Created)))
		return err
	})
	return e.fail("create family", err)
}

// RotateRefresh atomically replaces a family's current refresh token (oldHash) with newHash and
// returns the family. A token that was already rotated revokes its whole family and returns
// ErrReused; a token of a revoked family, or an unknown one, returns ErrNotFound. Of concurrent
// rotations of one token exactly one succeeds; the others count as reuse.
func (e *engine) RotateRefresh(ctx context.Context, oldHash, newHash []byte, at time.Time) (Family, error) {
	at = micro(at)
	var fam Family
	reused := false
	err := e.tx(ctx, func(tx *sql.Tx) error {
		var famID string
		var used time.Time
		if err := tx.QueryRowContext(ctx, e.q.lockRefresh, oldHash).Scan(&famID, scanTime{&used}); err != nil {
			return err
		}
		f, err := scanFamily(tx.QueryRowContext(ctx, e.q.lockFamily, famID))
		if err != nil {
			return err
		}
		if !f.Revoked.IsZero() {
			return ErrNotFound
		}
		if !used.IsZero() {
			reused = true
			_, err := tx.ExecContext(ctx, e.q.revokeFamilyByID, famID, e.arg(at))
			return err
		}
		if _, err := tx.ExecContext(ctx, e.q.useRefresh, oldHash, e.arg(at)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, e.q.insertRefresh, newHash, famID, e.arg(at)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, e.q.touchFamily, famID, e.arg(at)); err != nil {
			return err
		}
		f.LastUsed = at
		fam = f
		return nil
	})
	switch {
	case err != nil:
		return Family{}, e.fail("rotate refresh", err)
	case reused:
		return Family{}, e.fail("rotate refresh", ErrReused)
	}
	return fam, nil
}

// ListFamilies returns the account's sign-ins, revoked ones too, oldest first.
func (e *engine) ListFamilies(ctx context.Context, accountID string) ([]Family, error) {
	rows, err := e.db.QueryContext(ctx, e.q.listFamilies, accountID)
	if err != nil {
		return nil, e.fail("list families", err)
	}
	return collect(rows, scanFamily, e, "list families")
}

// PruneRefresh forgets refresh tokens rotated before the given time, and sign-ins revoked before
// it with their tokens, and returns how many rows went. A token older than that which comes back is
// then merely unknown (ErrNotFound) instead of revoking its family, so choose a time well past the
// refresh token's lifetime.
func (e *engine) PruneRefresh(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for _, q := range []string{e.q.pruneRefresh, e.q.pruneFamilies} {
		res, err := e.db.ExecContext(ctx, q, e.arg(micro(before)))
		if err != nil {
			return total, e.fail("prune refresh", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, e.fail("prune refresh", err)
		}
		total += n
	}
	return total, nil
}

// RevokeFamily revokes one of the account's sign-ins (a second revocation keeps the first time).
func (e *engine) RevokeFamily(ctx context.Context, accountID, id string, at time.Time) error {
	return e.exec(ctx, "revoke family", e.q.revokeFamily, accountID, id, e.arg(micro(at)))
}
