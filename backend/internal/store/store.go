// Package store keeps the account plane's records: accounts, API keys, refresh-token families,
// device codes, web sessions, signing keys, processed webhook events and daily usage counts.
//
// Two implementations share one method set: SQLite (modernc.org/sqlite, no cgo) for single-machine
// installs and PostgreSQL (pgx) for production. Both run the same engine over database/sql; the
// SQL of both dialects lives in queries.go and the versioned migrations under migrations/. Nothing
// here stores code, prompts or model output: docs/accounts.md lists every column, and a test
// compares the schema against that list.
//
// Times are kept to the microsecond and returned in UTC; a zero time.Time means "not set" and is
// stored as NULL.
package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// Sentinel errors. Every error a method returns wraps at most one of them.
var (
	// ErrNotFound: no such row (or the row it would refer to does not exist).
	ErrNotFound = errors.New("not found")
	// ErrExists: a unique value (email, id, hash, user code, customer id) is taken.
	ErrExists = errors.New("already exists")
	// ErrReused: a refresh token that was already rotated was presented again; its family is now
	// revoked.
	ErrReused = errors.New("refresh token reused")
	// ErrUnavailable: the database cannot be reached, did not answer before the context's
	// deadline, or gave up on the call for a transient reason (a deadlock, the write lock held
	// too long); callers answer 503 and retry later.
	ErrUnavailable = errors.New("database unavailable")
	// ErrInvalid: the record breaks a rule of the schema (empty id or email, unknown status, a
	// required time left zero).
	ErrInvalid = errors.New("invalid record")
)

// Account statuses.
const (
	StatusActive    = "active"
	StatusPastDue   = "past_due"
	StatusCanceled  = "canceled"
	StatusSuspended = "suspended"
)

// Account is one user of the service. Emails are unique case-insensitively.
type Account struct {
	ID      string
	Email   string
	Name    string
	Created time.Time
	Plan    string
	Status  string // StatusActive, StatusPastDue, StatusCanceled or StatusSuspended
	// Billing: which provider ("stripe", "polar"), its customer and subscription ids.
	BillingProvider string
	CustomerID      string
	SubscriptionID  string
	// BillingUpdated is the provider's event time of the last billing state applied, so that an
	// older event arriving late does not undo a newer one.
	BillingUpdated time.Time
}

// APIKey is a long-lived key for headless machines; only its SHA-256 hash is stored.
type APIKey struct {
	ID        string
	AccountID string
	Name      string
	Prefix    string // short visible prefix, shown in lists so a user can tell keys apart
	Hash      []byte // SHA-256 of the key
	Created   time.Time
	LastUsed  time.Time
	Revoked   time.Time
}

// Family is a chain of rotated refresh tokens: one editor sign-in.
type Family struct {
	ID        string
	AccountID string
	Client    string
	Created   time.Time
	LastUsed  time.Time
	Revoked   time.Time
}

// DeviceCode is a pending RFC 8628 device authorization.
type DeviceCode struct {
	Hash      []byte // SHA-256 of the device_code
	UserCode  string
	Client    string
	Created   time.Time
	Expires   time.Time
	LastPoll  time.Time
	Interval  time.Duration // kept to the millisecond
	AccountID string        // set on approval
	Denied    bool
}

// Session is a signed-in web session; Hash is the SHA-256 of its cookie value.
type Session struct {
	Hash      []byte
	AccountID string
	Created   time.Time
	Expires   time.Time
}

// SigningKey is an Ed25519 key that signs access tokens.
type SigningKey struct {
	ID      string // kid
	Private []byte // ed25519 seed
	Created time.Time
	Retired time.Time
}

// UsageDay is one account's request and token counts on one UTC day.
type UsageDay struct {
	AccountID string
	Day       string // YYYY-MM-DD
	Requests  int64
	Tokens    int64
}

// NewID returns a random 128-bit id in lowercase hex, for records whose id the caller chooses.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// emailKey is the form of an email that uniqueness is checked on. Both dialects compare this
// column, computed here, so that SQLite (whose lower() folds ASCII only) and PostgreSQL agree on
// non-ASCII addresses. NFC first, so that "é" typed as one code point or as "e" and a combining
// accent is one address.
func emailKey(email string) string {
	return strings.ToLower(strings.ToUpper(norm.NFC.String(strings.TrimSpace(email))))
}

func validStatus(s string) bool {
	switch s {
	case StatusActive, StatusPastDue, StatusCanceled, StatusSuspended:
		return true
	}
	return false
}

func checkAccount(a Account) error {
	switch {
	case a.ID == "":
		return fmt.Errorf("%w: account without id", ErrInvalid)
	case strings.TrimSpace(a.Email) == "":
		return fmt.Errorf("%w: account without email", ErrInvalid)
	case !validStatus(a.Status):
		return fmt.Errorf("%w: account status %q", ErrInvalid, a.Status)
	}
	return nil
}

// micro drops what the databases cannot keep, so that a caller's value and the stored one compare
// equal.
func micro(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// scanTime reads a time column that either dialect returns: NULL, Unix microseconds (SQLite) or a
// time.Time (PostgreSQL).
type scanTime struct{ t *time.Time }

func (s scanTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.t = time.Time{}
	case int64:
		*s.t = time.UnixMicro(v).UTC()
	case time.Time:
		*s.t = v.UTC()
	default:
		return fmt.Errorf("store: cannot read %T as a time", src)
	}
	return nil
}

// scanText reads a nullable text column into a string ("" for NULL).
type scanText struct{ s *string }

func (s scanText) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.s = ""
	case string:
		*s.s = v
	case []byte:
		*s.s = string(v)
	default:
		return fmt.Errorf("store: cannot read %T as text", src)
	}
	return nil
}
