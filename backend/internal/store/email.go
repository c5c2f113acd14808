package store

import (
	"context"
	"fmt"
	"time"
)

// Purposes of an EmailToken.
const (
	PurposeSignup = "signup" // a sign-up waiting for its email to be confirmed
	PurposeReset  = "reset"  // a password reset
)

// EmailToken is a link the web pages mailed: Hash is the SHA-256 of the token in it. A sign-up
// keeps what the account will be made of (Email, Name, PasswordHash) until the link is followed;
// no account exists before. A reset names its AccountID.
type EmailToken struct {
	Hash         []byte
	Purpose      string // PurposeSignup or PurposeReset
	Email        string
	Name         string
	PasswordHash string // argon2id, sign-ups only
	AccountID    string // resets only
	Created      time.Time
	Expires      time.Time
}

func scanEmailToken(r rowScanner) (EmailToken, error) {
	var t EmailToken
	err := r.Scan(&t.Hash, &t.Purpose, &t.Email, &t.Name, &t.PasswordHash, scanText{&t.AccountID},
		scanTime{&t.Created}, scanTime{&t.Expires})
	return t, err
}

// CreateEmailToken stores a mailed link. ErrInvalid for an unknown purpose or a missing hash or
// expiry; ErrNotFound when a reset names no account; ErrExists when the hash is taken.
func (e *engine) CreateEmailToken(ctx context.Context, t EmailToken) error {
	if len(t.Hash) == 0 || t.Expires.IsZero() || (t.Purpose != PurposeSignup && t.Purpose != PurposeReset) {
		return e.fail("create email token", fmt.Errorf("%w: email token without hash, expiry or purpose", ErrInvalid))
	}
	var account any // NULL for a sign-up
	if t.AccountID != "" {
		account = t.AccountID
	} else if t.Purpose == PurposeReset {
		return e.fail("create email token", fmt.Errorf("%w: reset without account", ErrInvalid))
	}
	_, err := e.db.ExecContext(ctx, e.q.insertEmailToken, t.Hash, t.Purpose, t.Email, t.Name,
		t.PasswordHash, account, e.arg(micro(t.Created)), e.arg(micro(t.Expires)))
	return e.fail("create email token", err)
}

// TakeEmailToken deletes and returns the link with this hash and purpose if it has not expired
// at now: a link works once. ErrNotFound otherwise.
func (e *engine) TakeEmailToken(ctx context.Context, hash []byte, purpose string, now time.Time) (EmailToken, error) {
	t, err := scanEmailToken(e.db.QueryRowContext(ctx, e.q.takeEmailToken, hash, purpose, e.arg(micro(now))))
	return t, e.fail("take email token", err)
}

// DeleteSessions signs every web session of the account out (after a password reset).
func (e *engine) DeleteSessions(ctx context.Context, accountID string) error {
	_, err := e.db.ExecContext(ctx, e.q.deleteSessions, accountID)
	return e.fail("delete sessions", err)
}
