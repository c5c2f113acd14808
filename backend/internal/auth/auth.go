// Package auth verifies the bearer tokens that clients present: EdDSA (Ed25519) JWTs whose keys
// come from a JWKS document. It also creates the development signing key and mints development
// tokens for `codingplan-backend token`.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors Verify returns, wrapped with a reason that never quotes the token. The gateway maps
// ErrExpired to token_expired and ErrInvalid to unauthorized.
var (
	ErrInvalid = errors.New("invalid token")
	ErrExpired = errors.New("token expired")
)

// Defaults for Config.
const (
	DefaultIssuer   = "codingplan"
	DefaultAudience = "codingplan-backend"
	DefaultLeeway   = 30 * time.Second
	// DefaultRefetch is the least time between two JWKS refetches caused by unknown key ids.
	DefaultRefetch = 30 * time.Second
	// DefaultMaxAge is how long a loaded JWKS is trusted before it is read again.
	DefaultMaxAge = 10 * time.Minute
)

// Size caps checked before any parsing, so an oversized token costs nothing to reject.
const (
	MaxTokenBytes  = 8 << 10
	maxHeaderBytes = 1 << 10
	maxKIDBytes    = 128
)

// Alg is the only signing algorithm accepted.
const Alg = "EdDSA"

// Claims are a token's claims. Subject (sub), Plan, ExpiresAt (exp), Issuer (iss) and Audience
// (aud) are required. SID, optional, names the refresh-token family or API key the token came
// from, so that revoking that one sign-in refuses its tokens (see package revoke).
type Claims struct {
	Plan string `json:"plan"`
	SID  string `json:"sid,omitempty"`
	jwt.RegisteredClaims
}

// Validate checks the claims golang-jwt does not know about; it runs after the signature and
// the registered claims were checked.
func (c *Claims) Validate() error {
	if c.Subject == "" {
		return errors.New("missing sub")
	}
	if c.Plan == "" {
		return errors.New("missing plan")
	}
	return nil
}

// Expires returns the token's exp.
func (c *Claims) Expires() time.Time {
	if c.ExpiresAt == nil {
		return time.Time{}
	}
	return c.ExpiresAt.Time
}

// Config says where keys come from and which tokens to accept.
type Config struct {
	// JWKS is a file path or an https URL (http only for loopback hosts) of a JWKS document.
	JWKS     string
	Issuer   string        // required iss; DefaultIssuer when empty
	Audience string        // required aud; DefaultAudience when empty
	Leeway   time.Duration // clock skew allowed on exp and nbf; DefaultLeeway when zero
	// Refetch is the least time between two reloads of JWKS caused by an unknown kid;
	// DefaultRefetch when zero.
	Refetch time.Duration
	// MaxAge is how long a loaded JWKS is used before a verification reads it again, so that a
	// key removed from it (revoked) stops verifying without a restart. DefaultMaxAge when zero;
	// negative keeps a set until a token names an unknown kid.
	MaxAge time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	keys   *keySet
	parser *jwt.Parser
	log    *slog.Logger
}

// NewVerifier loads the key set once (failing when it cannot) and returns a verifier. log may
// be nil.
func NewVerifier(ctx context.Context, cfg Config, log *slog.Logger) (*Verifier, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Refetch == 0 {
		cfg.Refetch = DefaultRefetch
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ks, err := newKeySet(cfg.JWKS, cfg.Refetch, cfg.MaxAge, cfg.Now, log)
	if err != nil {
		return nil, err
	}
	if err := ks.load(ctx); err != nil {
		return nil, err
	}
	return &Verifier{
		keys: ks,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{Alg}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithTimeFunc(cfg.Now),
			jwt.WithStrictDecoding(),
		),
		log: log,
	}, nil
}

// Verify checks token and returns its claims. Errors wrap ErrExpired or ErrInvalid.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if err := precheck(token); err != nil {
		return nil, err
	}
	var claims Claims
	keyAsked := false
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		keyAsked = true
		kid, _ := t.Header["kid"].(string)
		return v.keys.lookup(ctx, kid)
	})
	if err != nil {
		if !keyAsked && errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			// The parser refuses an alg outside WithValidMethods before it asks for a key.
			return nil, fmt.Errorf("%w: algorithm not allowed", ErrInvalid)
		}
		return nil, classify(err)
	}
	return &claims, nil
}

// precheck rejects tokens by size and shape before any decoding.
func precheck(token string) error {
	if token == "" {
		return fmt.Errorf("%w: no token", ErrInvalid)
	}
	if len(token) > MaxTokenBytes {
		return fmt.Errorf("%w: token is over %d bytes", ErrInvalid, MaxTokenBytes)
	}
	if strings.Count(token, ".") != 2 {
		return fmt.Errorf("%w: token is not three segments", ErrInvalid)
	}
	if strings.IndexByte(token, '.') > maxHeaderBytes {
		return fmt.Errorf("%w: token header is over %d bytes", ErrInvalid, maxHeaderBytes)
	}
	return nil
}

// classify turns a golang-jwt error into one of ours with a fixed reason.
func classify(err error) error {
	var reason string
	switch {
	case errors.Is(err, errUnknownKey):
		reason = "unknown key id"
	case errors.Is(err, errBadKID):
		reason = "missing or malformed key id"
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: exp has passed", ErrExpired)
	case errors.Is(err, jwt.ErrTokenMalformed):
		reason = "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason = "bad signature"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		reason = "token not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = "token issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		reason = "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		reason = "wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		reason = "a required claim is missing"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		reason = "token cannot be verified"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		reason = "invalid claims (sub and plan are required)"
	default:
		reason = "token rejected"
	}
	return fmt.Errorf("%w: %s", ErrInvalid, reason)
}
