// Package signin is the language server's side of the account service (docs/accounts.md,
// "Token API"): the device sign-in (RFC 8628), refresh tokens and API keys exchanged for access
// tokens, the refresh token kept in a file only the user can read, and a Keeper that gets a
// fresh access token before the current one expires and hands it to the backend connection.
package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	wire "github.com/codingplan/codingplan/shared"
)

// Grant types of the token endpoint.
const (
	grantDevice  = "urn:ietf:params:oauth:grant-type:device_code"
	grantRefresh = "refresh_token"
	grantAPIKey  = "urn:codingplan:grant-type:api_key"
)

// Errors at the package's edge. An *Error from the service wraps the one its code names.
var (
	// ErrInvalidGrant: the refresh token or API key is unknown, used, revoked, or its account
	// cannot have tokens: sign in again.
	ErrInvalidGrant = errors.New("signin: the sign-in is no longer valid")
	// ErrDenied: the user denied the device sign-in.
	ErrDenied = errors.New("signin: the sign-in was denied")
	// ErrExpired: the device code expired before the user approved it.
	ErrExpired = errors.New("signin: the code expired before it was approved")
	// ErrUnavailable: the account service could not be reached or cannot answer now; the same
	// request may work later.
	ErrUnavailable = errors.New("signin: the account service is unavailable")
	// ErrSignedOut: there is nothing to refresh or revoke.
	ErrSignedOut = errors.New("signin: signed out")
)

// Error is an OAuth error answer (RFC 6749 §5.2, RFC 8628 §3.5).
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
	// RetryAfter is the Retry-After of a 429 or 503.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	if e.Description == "" {
		return "account service: " + e.Code
	}
	return "account service: " + e.Code + ": " + wire.Clip(e.Description, 200)
}

// Unwrap maps the code to the package's sentinel.
func (e *Error) Unwrap() error {
	switch e.Code {
	case "invalid_grant":
		return ErrInvalidGrant
	case "access_denied":
		return ErrDenied
	case "expired_token":
		return ErrExpired
	case "temporarily_unavailable", "rate_limited", "server_error":
		return ErrUnavailable
	}
	return nil
}

// Tokens is a token endpoint's answer.
type Tokens struct {
	Access  wire.Secret
	Refresh wire.Secret // empty for an API key
	// Expires is when Access stops working, by the clock that received it.
	Expires time.Time
}

// Device is a started device sign-in (RFC 8628 §3.2).
type Device struct {
	Code            wire.Secret
	UserCode        string
	VerificationURI string
	// CompleteURI carries the user code: the browser shows it filled in.
	CompleteURI string
	Expires     time.Time
	Interval    time.Duration
}

// Service talks to the account service at a base URL (http://127.0.0.1:8788).
type Service struct {
	base   string
	client string // client_id: "vscode", "neovim", the editor's name
	http   *http.Client
	now    func() time.Time
}

// NewService returns a client of the account service at base, naming itself client (shown to
// the user in their list of sign-ins). hc nil means a client with a 30 s timeout.
func NewService(base, client string, hc *http.Client, now func() time.Time) *Service {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	return &Service{base: strings.TrimRight(base, "/"), client: clientID(client), http: hc, now: now}
}

// URL is the account service's base URL.
func (s *Service) URL() string { return s.base }

// clientID makes an editor's name a valid client_id: printable ASCII without spaces, 1 to 64.
func clientID(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r > ' ' && r <= '~':
			b.WriteRune(r)
		case r == ' ' && b.Len() > 0:
			b.WriteByte('-')
		}
		if b.Len() == 64 {
			break
		}
	}
	if b.Len() == 0 {
		return "codingplan-lsp"
	}
	return b.String()
}

// StartDevice asks for a device code (POST /v1/device/code).
func (s *Service) StartDevice(ctx context.Context) (Device, error) {
	var a struct {
		DeviceCode              string `json:"device_code"`
		UserCode                string `json:"user_code"`
		VerificationURI         string `json:"verification_uri"`
		VerificationURIComplete string `json:"verification_uri_complete"`
		ExpiresIn               int64  `json:"expires_in"`
		Interval                int64  `json:"interval"`
	}
	start := s.now()
	if err := s.post(ctx, "/v1/device/code", url.Values{"client_id": {s.client}}, &a); err != nil {
		return Device{}, err
	}
	if a.DeviceCode == "" || a.UserCode == "" || a.VerificationURI == "" {
		return Device{}, fmt.Errorf("%w: the device code answer is incomplete", ErrUnavailable)
	}
	d := Device{
		Code: wire.Secret(a.DeviceCode), UserCode: a.UserCode, VerificationURI: a.VerificationURI,
		CompleteURI: a.VerificationURIComplete,
		Expires:     start.Add(time.Duration(max(a.ExpiresIn, 1)) * time.Second),
		Interval:    time.Duration(max(a.Interval, 5)) * time.Second, // RFC 8628 §3.2: 5 s by default
	}
	if d.CompleteURI == "" {
		d.CompleteURI = d.VerificationURI
	}
	return d, nil
}

// PollDevice asks once whether the device sign-in was approved. An *Error with code
// authorization_pending or slow_down means: ask again later.
func (s *Service) PollDevice(ctx context.Context, d Device) (Tokens, error) {
	return s.token(ctx, url.Values{"grant_type": {grantDevice}, "device_code": {string(d.Code)}, "client_id": {s.client}})
}

// Refresh exchanges a refresh token for new tokens; the old one stops working.
func (s *Service) Refresh(ctx context.Context, refresh wire.Secret) (Tokens, error) {
	return s.token(ctx, url.Values{"grant_type": {grantRefresh}, "refresh_token": {string(refresh)}})
}

// Exchange exchanges an API key for an access token.
func (s *Service) Exchange(ctx context.Context, apiKey wire.Secret) (Tokens, error) {
	return s.token(ctx, url.Values{"grant_type": {grantAPIKey}, "api_key": {string(apiKey)}})
}

// Revoke ends the sign-in of a refresh token (POST /v1/revoke, RFC 7009).
func (s *Service) Revoke(ctx context.Context, refresh wire.Secret) error {
	return s.post(ctx, "/v1/revoke", url.Values{"token": {string(refresh)}, "token_type_hint": {"refresh_token"}, "client_id": {s.client}}, nil)
}

func (s *Service) token(ctx context.Context, form url.Values) (Tokens, error) {
	var a struct {
		AccessToken  string `json:"access_token"`
		ExpiresIn    int64  `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
	}
	start := s.now()
	if err := s.post(ctx, "/v1/token", form, &a); err != nil {
		return Tokens{}, err
	}
	if a.AccessToken == "" || a.ExpiresIn <= 0 {
		return Tokens{}, fmt.Errorf("%w: the token answer is incomplete", ErrUnavailable)
	}
	return Tokens{Access: wire.Secret(a.AccessToken), Refresh: wire.Secret(a.RefreshToken),
		Expires: start.Add(time.Duration(a.ExpiresIn) * time.Second)}, nil
}

// post sends a form and decodes a 200 answer into out (nil: the body is ignored). Other
// answers become an *Error; a failure to connect wraps ErrUnavailable.
func (s *Service) post(ctx context.Context, path string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("signin: the account service URL %q: %w", s.base, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s", ErrUnavailable, wire.Clip(err.Error(), 200))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("%w: reading the answer: %v", ErrUnavailable, err)
	}
	if resp.StatusCode == http.StatusOK {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("%w: the answer is not JSON", ErrUnavailable)
		}
		return nil
	}
	e := &Error{}
	if json.Unmarshal(body, e) != nil || e.Code == "" {
		e = &Error{Code: "server_error", Description: fmt.Sprintf("HTTP %d from %s", resp.StatusCode, path)}
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusNotImplemented {
			e.Description += " (is accountsUrl the account service?)"
		}
	}
	e.RetryAfter = wire.RetryAfter(resp.Header.Get("Retry-After"), s.now())
	return e
}
