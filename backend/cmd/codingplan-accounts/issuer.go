package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/codingplan/codingplan/backend/internal/accounts"
	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/tokens"
)

// tokenConfig is the tokens package's configuration from the settings: the claims the backend
// requires (its issuer and audience settings), the device page under public_url, the
// per-account limit of the server the handler is mounted in, and where a sign-in its client
// revoked is announced (nil for admin commands, which issue keys only).
func tokenConfig(s *accounts.Settings, revoked *relay) tokens.Config {
	return tokens.Config{
		OnRevoke:        revoked.revoke,
		Issuer:          s.Issuer,
		Audience:        s.Audience,
		AccessTTL:       s.AccessTTL,
		VerificationURI: s.URL() + "/device",
		AccountLimit: func(ctx context.Context, accountID string) time.Duration {
			if ok, wait := accounts.AccountLimit(ctx, accountID); !ok {
				return max(wait, time.Second)
			}
			return 0
		},
	}
}

// newIssuer loads (or, on a new database, creates) the signing keys.
func newIssuer(s *accounts.Settings, d db, revoked *relay, log *slog.Logger) (*tokens.Issuer, error) {
	iss, err := tokens.New(d, tokenConfig(s, revoked), log)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return iss, nil
}

// lazyIssuer is the server's Tokens, Approver and Keys. While the database is unreachable at
// start, there are no signing keys to load: it answers 503 (store.ErrUnavailable) until set.
type lazyIssuer struct{ p atomic.Pointer[loaded] }

type loaded struct {
	iss *tokens.Issuer
	h   http.Handler
}

func (l *lazyIssuer) set(i *tokens.Issuer) { l.p.Store(&loaded{i, i.Handler()}) }

func (l *lazyIssuer) get() (*tokens.Issuer, error) {
	if x := l.p.Load(); x != nil {
		return x.iss, nil
	}
	return nil, fmt.Errorf("signing keys not loaded yet: %w", store.ErrUnavailable)
}

func (l *lazyIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := l.p.Load()
	if x == nil {
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, `{"error":"temporarily_unavailable","error_description":"the database is unavailable"}`)
		return
	}
	x.h.ServeHTTP(w, r)
}

func (l *lazyIssuer) NewAPIKey(ctx context.Context, accountID, name string) (string, store.APIKey, error) {
	i, err := l.get()
	if err != nil {
		return "", store.APIKey{}, err
	}
	return i.NewAPIKey(ctx, accountID, name)
}

func (l *lazyIssuer) Approve(ctx context.Context, userCode, accountID string) error {
	i, err := l.get()
	if err != nil {
		return err
	}
	return approveError(i.Approve(ctx, userCode, accountID))
}

func (l *lazyIssuer) Deny(ctx context.Context, userCode string) error {
	i, err := l.get()
	if err != nil {
		return err
	}
	return approveError(i.Deny(ctx, userCode))
}

func (l *lazyIssuer) Device(ctx context.Context, userCode string) (store.DeviceCode, error) {
	i, err := l.get()
	if err != nil {
		return store.DeviceCode{}, err
	}
	d, err := i.Device(ctx, userCode)
	return d, approveError(err)
}

// approveError maps the tokens package's device errors onto the accounts server's.
func approveError(err error) error {
	switch {
	case errors.Is(err, tokens.ErrUnknownCode), errors.Is(err, tokens.ErrExpired), errors.Is(err, tokens.ErrDecided):
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case errors.Is(err, tokens.ErrNotEntitled):
		return fmt.Errorf("%w: %w", accounts.ErrNotEntitled, err)
	}
	return err
}

// relay passes the issuer's revocations to the Notifier, which serve makes after the issuer
// (it needs Valkey). Until it is set, and without Valkey, a revocation reaches the nodes when
// its tokens expire.
type relay struct {
	n   atomic.Pointer[accounts.Notifier]
	log *slog.Logger
}

func (r *relay) set(n accounts.Notifier) { r.n.Store(&n) }

func (r *relay) revoke(ctx context.Context, accountID, sid string) {
	if r == nil {
		return
	}
	n := r.n.Load()
	if n == nil || *n == nil {
		return
	}
	if err := (*n).Revoke(ctx, accountID, sid); err != nil && r.log != nil {
		r.log.Warn("revocation not published", "account", accountID, "err", err)
	}
}
