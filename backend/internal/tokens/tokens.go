// Package tokens issues the account plane's credentials: EdDSA access tokens (JWTs the routing
// plane verifies offline against the JWKS published here), rotating refresh tokens, API keys, and
// RFC 8628 device sign-in. It is a library: the accounts server mounts Handler, which serves the
// token endpoint (POST /v1/token), the device authorization endpoint (POST /v1/device/code) and
// the key set (GET /.well-known/jwks.json); the web pages call Approve, Deny and Device; the
// admin CLI calls Rotate, Prune and NewAPIKey.
//
// Every secret handed out (refresh token, device code, API key) is stored only as its SHA-256
// hash. Rate limiting per address and per account is the server's; the device flow's slow_down
// is enforced here.
package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/store"
)

// Store is what this package needs of the account database; *store.SQLite and *store.Postgres
// have these methods.
type Store interface {
	Account(ctx context.Context, id string) (store.Account, error)

	CreateAPIKey(ctx context.Context, k store.APIKey) error
	APIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error)
	TouchAPIKey(ctx context.Context, id string, at time.Time) error

	CreateFamily(ctx context.Context, f store.Family, tokenHash []byte) error
	RotateRefresh(ctx context.Context, oldHash, newHash []byte, at time.Time) (store.Family, error)
	RevokeFamily(ctx context.Context, accountID, id string, at time.Time) error

	CreateDeviceCode(ctx context.Context, d store.DeviceCode) error
	DeviceByUserCode(ctx context.Context, code string) (store.DeviceCode, error)
	DeviceByHash(ctx context.Context, hash []byte) (store.DeviceCode, error)
	ApproveDevice(ctx context.Context, userCode, accountID string) error
	DenyDevice(ctx context.Context, userCode string) error
	PollDevice(ctx context.Context, hash []byte, at time.Time, interval time.Duration) (store.DeviceCode, error)
	DeleteDevice(ctx context.Context, hash []byte) error

	AddSigningKey(ctx context.Context, k store.SigningKey) error
	SigningKeys(ctx context.Context) ([]store.SigningKey, error)
	DeleteSigningKey(ctx context.Context, id string) error
}

// Errors at the package's edge. Store errors (store.ErrUnavailable above all) pass through
// wrapped.
var (
	// ErrNotEntitled: the account may not have tokens (suspended, canceled, or without a plan).
	ErrNotEntitled = errors.New("account not entitled to tokens")
	// ErrUnknownCode: no pending device sign-in has this user code (or it is malformed).
	ErrUnknownCode = errors.New("unknown user code")
	// ErrExpired: the device sign-in has expired.
	ErrExpired = errors.New("user code expired")
	// ErrDecided: the device sign-in was already denied, or approved for another account.
	ErrDecided = errors.New("device sign-in already decided")
)

// Defaults for Config.
const (
	DefaultAccessTTL    = 15 * time.Minute
	DefaultDeviceTTL    = 15 * time.Minute
	DefaultPollInterval = 5 * time.Second
	DefaultRotateDelay  = 2 * time.Minute
)

// Config says how tokens are issued.
type Config struct {
	// Issuer is the iss claim; auth.DefaultIssuer ("codingplan") when empty.
	Issuer string
	// Audience is the aud claim; auth.DefaultAudience ("codingplan-backend") when empty.
	Audience string
	// AccessTTL is how long an access token lives; DefaultAccessTTL (15m) when zero.
	AccessTTL time.Duration
	// DeviceTTL is how long a device sign-in waits for approval; DefaultDeviceTTL (15m) when zero.
	DeviceTTL time.Duration
	// PollInterval is the least time between two polls of the token endpoint in the device flow;
	// DefaultPollInterval (5s) when zero.
	PollInterval time.Duration
	// VerificationURI is the page where a user enters a device flow's user code, an absolute
	// http(s) URL, e.g. https://accounts.example.com/device. Required.
	VerificationURI string
	// RotateDelay is how long after Rotate the new key starts signing: it is published at once,
	// and verifiers need time to fetch it (a backend node refetches the JWKS on an unknown kid at
	// most every 30 s; the JWKS answer may be cached for 30 s). DefaultRotateDelay (2m) when
	// zero; negative signs with the new key at once.
	RotateDelay time.Duration
	// AccountLimit, when set, is asked before an API key is exchanged for an access token, with
	// the key's account (the server's per-account rate limit: the address alone does not stop a
	// leaked key used from many machines). A positive answer refuses the request with HTTP 429,
	// error "rate_limited" and that Retry-After. Device and refresh grants are not asked: each
	// needs a one-time code or the sign-in's one current token.
	AccountLimit func(ctx context.Context, accountID string) (retryAfter time.Duration)
	// OnRevoke, when set, is told of each sign-in its client revoked (POST /v1/revoke), to
	// tell the routing plane (accounts.Notifier's Revoke).
	OnRevoke func(ctx context.Context, accountID, sid string)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Issuer issues and checks the account plane's credentials. It is safe for concurrent use.
type Issuer struct {
	st     Store
	cfg    Config
	verify *url.URL
	log    *slog.Logger

	mu     sync.Mutex
	keys   []store.SigningKey // as last read from the store, oldest first
	loaded time.Time          // when keys was read
}

// New checks cfg, loads the signing keys from the store and creates the first one when there is
// none that signs.
func New(st Store, cfg Config, log *slog.Logger) (*Issuer, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = auth.DefaultIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = auth.DefaultAudience
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.DeviceTTL == 0 {
		cfg.DeviceTTL = DefaultDeviceTTL
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.RotateDelay == 0 {
		cfg.RotateDelay = DefaultRotateDelay
	}
	if cfg.RotateDelay < 0 {
		cfg.RotateDelay = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.AccessTTL < 0 || cfg.DeviceTTL < 0 || cfg.PollInterval < 0:
		return nil, errors.New("tokens: negative duration in config")
	case cfg.PollInterval%time.Second != 0:
		return nil, errors.New("tokens: poll interval must be whole seconds")
	}
	u, err := url.Parse(cfg.VerificationURI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("tokens: verification URI %q is not an absolute http(s) URL", cfg.VerificationURI)
	}
	i := &Issuer{st: st, cfg: cfg, verify: u, log: log}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := i.reload(ctx); err != nil {
		return nil, err
	}
	if i.current().kid == "" {
		if _, err := i.addKey(ctx); err != nil {
			return nil, err
		}
	}
	return i, nil
}

func (i *Issuer) now() time.Time { return i.cfg.Now() }

// random returns n random bytes in base64url without padding.
func random(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
