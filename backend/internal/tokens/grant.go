package tokens

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// Grant types the token endpoint accepts.
const (
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	GrantRefresh    = "refresh_token"
	GrantAPIKey     = "urn:codingplan:grant-type:api_key"
)

// APIKeyPrefix starts every API key.
const APIKeyPrefix = "cpk_"

const (
	secretBytes     = 32                            // refresh tokens, device codes, API keys
	secretLen       = 43                            // their length in base64url: 32 bytes
	refreshTokenLen = secretLen                     // opaque, no prefix
	deviceCodeLen   = secretLen                     //
	apiKeyLen       = len(APIKeyPrefix) + secretLen // "cpk_" and 43 characters
	apiKeyShown     = len(APIKeyPrefix) + 8         // how much of a key is stored as its prefix
	maxAPIKeyName   = 100                           // characters
)

// oauthError is an RFC 6749 §5.2 (or RFC 8628 §3.5) error answer.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	status      int
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

// The answers of the token and device endpoints. Descriptions never say whether a key, token,
// code or account exists.
var (
	errInvalidClient    = &oauthError{"invalid_client", "client_id must be 1 to 64 printable ASCII characters; no client authentication is supported", 401}
	errInvalidGrant     = &oauthError{"invalid_grant", "the grant is invalid, expired or revoked", 400}
	errUnsupportedGrant = &oauthError{"unsupported_grant_type", "grant_type must be " + GrantDeviceCode + ", " + GrantRefresh + " or " + GrantAPIKey, 400}
	errPending          = &oauthError{"authorization_pending", "the user has not approved the sign-in yet", 400}
	errSlowDown         = &oauthError{"slow_down", "polling too fast: wait 5 seconds more between polls", 400}
	errAccessDenied     = &oauthError{"access_denied", "the sign-in was denied", 400}
	errExpiredToken     = &oauthError{"expired_token", "the device code has expired: start again", 400}
	errUnavailable      = &oauthError{"temporarily_unavailable", "the account service cannot reach its database; retry later", 503}
	errServer           = &oauthError{"server_error", "internal error", 500}
	errUnsupportedToken = &oauthError{"unsupported_token_type", "only refresh tokens are revoked here", 400}
)

// rateLimited is Config.AccountLimit's refusal.
type rateLimited struct{ wait time.Duration }

func (e *rateLimited) Error() string { return "rate limited for " + e.wait.String() }

var errRateLimited = &oauthError{"rate_limited", "too many requests for this account; retry after Retry-After seconds", 429}

func invalidRequest(desc string) *oauthError {
	return &oauthError{"invalid_request", desc, 400}
}

// tokenResponse is a successful token endpoint answer (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// eq compares two strings in a time that depends only on their lengths.
func eq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// grant answers a parsed token request.
func (i *Issuer) grant(ctx context.Context, r tokenRequest) (tokenResponse, error) {
	switch r.grantType {
	case GrantDeviceCode:
		return i.pollDevice(ctx, r.deviceCode, r.clientID)
	case GrantRefresh:
		return i.refresh(ctx, r.refreshToken)
	case GrantAPIKey:
		return i.apiKey(ctx, r.apiKey)
	}
	return tokenResponse{}, errUnsupportedGrant
}

func (i *Issuer) access(ctx context.Context, a store.Account, sid string) (tokenResponse, error) {
	tok, exp, err := i.Mint(ctx, a, sid)
	if err != nil {
		return tokenResponse{}, err
	}
	return tokenResponse{AccessToken: tok, TokenType: "Bearer",
		ExpiresIn: int64(exp.Sub(i.now()).Round(time.Second) / time.Second)}, nil
}

// newSignIn starts a refresh family for the account and returns its first access and refresh
// tokens.
func (i *Issuer) newSignIn(ctx context.Context, a store.Account, client string) (tokenResponse, error) {
	refresh := random(secretBytes)
	f := store.Family{ID: store.NewID(), AccountID: a.ID, Client: client, Created: i.now()}
	resp, err := i.access(ctx, a, f.ID)
	if err != nil {
		return tokenResponse{}, err
	}
	if err := i.st.CreateFamily(ctx, f, hash(refresh)); err != nil {
		return tokenResponse{}, fmt.Errorf("tokens: create sign-in: %w", err)
	}
	resp.RefreshToken = refresh
	return resp, nil
}

// refresh rotates a refresh token: the old one stops working, and presenting it again revokes
// its whole family.
func (i *Issuer) refresh(ctx context.Context, old string) (tokenResponse, error) {
	if len(old) != refreshTokenLen {
		return tokenResponse{}, errInvalidGrant
	}
	next := random(secretBytes)
	f, err := i.st.RotateRefresh(ctx, hash(old), hash(next), i.now())
	switch {
	case errors.Is(err, store.ErrReused):
		i.log.Warn("refresh token reused: its sign-in is revoked")
		return tokenResponse{}, errInvalidGrant
	case errors.Is(err, store.ErrNotFound):
		return tokenResponse{}, errInvalidGrant
	case err != nil:
		return tokenResponse{}, err
	}
	a, err := i.accountAfterRotation(ctx, f.AccountID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		// The new refresh token is stored but the client never sees it: its next try with the
		// old one counts as reuse. Rare (the database went away between two statements).
		i.log.Warn("refresh token rotated but the account could not be read", "account", f.AccountID, "err", err)
		return tokenResponse{}, err
	}
	resp, err := i.access(ctx, a, f.ID)
	if errors.Is(err, ErrNotEntitled) || a.ID == "" {
		// Suspended, canceled or gone: the sign-in ends here (the user signs in again once the
		// account is back), rather than leaving a family whose token nobody holds.
		if err := i.st.RevokeFamily(ctx, f.AccountID, f.ID, i.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
			i.log.Warn("sign-in of an account without tokens not revoked", "account", f.AccountID, "err", err)
		}
		return tokenResponse{}, errInvalidGrant
	}
	if err != nil {
		return tokenResponse{}, err
	}
	resp.RefreshToken = next
	return resp, nil
}

// accountAfterRotation reads the account of a sign-in whose refresh token was just rotated,
// trying again briefly when the database is unavailable: failing now loses the new token.
func (i *Issuer) accountAfterRotation(ctx context.Context, id string) (store.Account, error) {
	wait := 50 * time.Millisecond
	for try := 1; ; try++ {
		a, err := i.st.Account(ctx, id)
		if !errors.Is(err, store.ErrUnavailable) || try == 3 {
			return a, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return a, err
		case <-t.C:
		}
		wait *= 4
	}
}

// apiKey exchanges an API key for an access token (no refresh token: the key is the long-lived
// credential).
func (i *Issuer) apiKey(ctx context.Context, key string) (tokenResponse, error) {
	if len(key) != apiKeyLen || !strings.HasPrefix(key, APIKeyPrefix) {
		return tokenResponse{}, errInvalidGrant
	}
	h := hash(key)
	k, err := i.st.APIKeyByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return tokenResponse{}, errInvalidGrant
	}
	if err != nil {
		return tokenResponse{}, err
	}
	if subtle.ConstantTimeCompare(k.Hash, h) != 1 || !k.Revoked.IsZero() {
		return tokenResponse{}, errInvalidGrant
	}
	if i.cfg.AccountLimit != nil {
		if wait := i.cfg.AccountLimit(ctx, k.AccountID); wait > 0 {
			return tokenResponse{}, &rateLimited{wait}
		}
	}
	a, err := i.st.Account(ctx, k.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return tokenResponse{}, errInvalidGrant
	}
	if err != nil {
		return tokenResponse{}, err
	}
	resp, err := i.access(ctx, a, k.ID)
	if errors.Is(err, ErrNotEntitled) {
		return tokenResponse{}, errInvalidGrant
	}
	if err != nil {
		return tokenResponse{}, err
	}
	if err := i.st.TouchAPIKey(ctx, k.ID, i.now()); err != nil {
		i.log.Warn("api key last use not recorded", "key", k.ID, "err", err)
	}
	return resp, nil
}

// NewAPIKey creates an API key for the account and returns it in plain text (shown once; only
// its hash is kept) with its stored record. store.ErrNotFound when the account does not exist.
func (i *Issuer) NewAPIKey(ctx context.Context, accountID, name string) (plaintext string, k store.APIKey, err error) {
	name = strings.TrimSpace(name)
	if len([]rune(name)) > maxAPIKeyName || !printable(name) {
		return "", store.APIKey{}, fmt.Errorf("tokens: api key name must be at most %d printable characters", maxAPIKeyName)
	}
	plaintext = APIKeyPrefix + random(secretBytes)
	k = store.APIKey{ID: store.NewID(), AccountID: accountID, Name: name, Prefix: plaintext[:apiKeyShown],
		Hash: hash(plaintext), Created: i.now().Truncate(time.Microsecond).UTC()}
	if err := i.st.CreateAPIKey(ctx, k); err != nil {
		return "", store.APIKey{}, fmt.Errorf("tokens: new api key: %w", err)
	}
	return plaintext, k, nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}
