// Package accounts is the HTTP server of codingplan-accounts, the account plane: sign-in and
// web sessions, the signed-in account's API (account, API keys, sign-ins, checkout), device approval,
// billing webhooks, health, and the mount point of the token endpoints. It owns no database
// driver: the binary opens a store and passes it in.
//
// Every answer is JSON; errors are {"error": code, "message": text}. Logs carry account ids,
// never emails, passwords, keys, tokens or cookies.
package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/codingplan/codingplan/backend/internal/billing"
	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/throttle"
)

// Store is what the server needs of the account store (*store.SQLite, *store.Postgres).
type Store interface {
	billing.Store
	Account(ctx context.Context, id string) (store.Account, error)
	PasswordHash(ctx context.Context, accountID string) (string, error)
	CreateSession(ctx context.Context, s store.Session) error
	SessionByHash(ctx context.Context, hash []byte) (store.Session, error)
	DeleteSession(ctx context.Context, hash []byte) error
	Usage(ctx context.Context, accountID string) ([]store.UsageDay, error)
	CreateAPIKey(ctx context.Context, k store.APIKey) error
	ListAPIKeys(ctx context.Context, accountID string) ([]store.APIKey, error)
	RevokeAPIKey(ctx context.Context, accountID, id string, at time.Time) error
	ListFamilies(ctx context.Context, accountID string) ([]store.Family, error)
	RevokeFamily(ctx context.Context, accountID, id string, at time.Time) error
	// For the web pages: sign-up, password reset, account deletion.
	CreateAccount(ctx context.Context, a store.Account) (store.Account, error)
	SetPassword(ctx context.Context, accountID, hash string) error
	DeleteAccount(ctx context.Context, id string) error
	DeleteSessions(ctx context.Context, accountID string) error
	CreateEmailToken(ctx context.Context, t store.EmailToken) error
	TakeEmailToken(ctx context.Context, hash []byte, purpose string, now time.Time) (store.EmailToken, error)
	// Version is the readiness probe: it reads the database.
	Version(ctx context.Context) (int64, error)
}

// Approver approves or denies a pending device sign-in (RFC 8628) for the signed-in account.
// The tokens package's *tokens.Issuer satisfies it. Errors wrapping store.ErrNotFound mean no
// pending code has that user code (unknown, expired, or already decided); errors wrapping
// ErrNotEntitled, that the account may not have tokens.
type Approver interface {
	Approve(ctx context.Context, userCode, accountID string) error
	Deny(ctx context.Context, userCode string) error
}

// DeviceFinder finds the device sign-in a user code names, for the approval page to show which
// client asks (*tokens.Issuer.Device). Errors wrapping store.ErrNotFound mean there is none.
type DeviceFinder interface {
	Device(ctx context.Context, userCode string) (store.DeviceCode, error)
}

// Notifier tells the routing plane that an account's access changed, so that its open
// websockets are closed or re-limited (the revoke package's pub/sub, wired by the binary).
// sid is the API key or sign-in id when only that credential is revoked, "" for the whole
// account.
type Notifier interface {
	Revoke(ctx context.Context, accountID, sid string) error
	Plan(ctx context.Context, accountID, plan string) error
}

// Options are the server's dependencies and settings.
type Options struct {
	Store    Store
	Settings *Settings
	Webhooks *billing.Webhooks // nil: webhooks are refused (503)
	Plans    billing.PlanMap
	// Tokens serves POST /v1/token, POST /v1/device/code, POST /v1/revoke and GET /.well-known/jwks.json
	// (the tokens package); nil answers 501 there. The server applies the rate limits and the
	// body cap before it.
	Tokens http.Handler
	// Approver decides device sign-ins; nil answers 501 at /v1/device/approve.
	Approver Approver
	// Devices finds device sign-ins for the approval page; nil: the page cannot show them.
	Devices DeviceFinder
	// Mailer sends the pages' mail (sign-up confirmation, password reset); nil keeps them in
	// memory, listed at /dev/mail when Settings.Dev is set.
	Mailer Mailer
	// Keys creates API keys; nil answers 501 at POST /v1/keys.
	Keys KeyMaker
	// Checkout starts subscriptions (billing.NewCheckout); nil answers 501 at POST /v1/checkout.
	Checkout Checkout
	// Notify publishes revocations and plan changes; nil only logs them.
	Notify Notifier
	Log    *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Server is the account plane's HTTP handler.
type Server struct {
	o       Options
	log     *slog.Logger
	now     func() time.Time
	handler http.Handler
	secure  bool // cookies get Secure (public_url is https)
	limits  limits
	hashing chan struct{} // bounds concurrent argon2id computations (19 MiB each)
	mailer  Mailer
	mailbox *mailbox // the mails sent when no Mailer is given
	pages   pages
}

// Body caps.
const (
	maxJSONBody  = 16 << 10
	maxTokenBody = 16 << 10
)

// New returns a Server.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Settings == nil {
		o.Settings = DefaultSettings()
	}
	s := &Server{o: o, log: o.Log, now: o.Now, secure: strings.HasPrefix(o.Settings.URL(), "https://"),
		hashing: make(chan struct{}, 4)}
	s.limits = newLimits(o.Settings.Rate, o.Now)
	s.mailer = o.Mailer
	if s.mailer == nil {
		s.mailbox = &mailbox{}
		s.mailer = s.mailbox
	}
	s.pages = parsePages()
	s.handler = s.routes()
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// Server to server: signed by the provider, no browser involved.
	mux.Handle("POST /v1/webhooks/stripe", s.limit(s.limits.webhook, byAddr, http.HandlerFunc(s.stripe)))
	mux.Handle("POST /v1/webhooks/polar", s.limit(s.limits.webhook, byAddr, http.HandlerFunc(s.polar)))
	tokens := s.tokens()
	mux.Handle("POST /v1/token", s.limit(s.limits.token, byAddr, tokens))
	mux.Handle("POST /v1/device/code", s.limit(s.limits.device, byAddr, tokens))
	mux.Handle("POST /v1/revoke", s.limit(s.limits.token, byAddr, tokens))
	mux.Handle("GET /.well-known/jwks.json", tokens)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)

	// Browser facing: cross-origin form posts are refused (Sec-Fetch-Site, Origin).
	web := http.NewServeMux()
	web.Handle("POST /v1/session", s.limit(s.limits.sessionAddr, byAddr, http.HandlerFunc(s.signIn)))
	web.HandleFunc("DELETE /v1/session", s.signOut)
	web.Handle("GET /v1/account", s.signedIn(s.account))
	web.Handle("GET /v1/keys", s.signedIn(s.listKeys))
	web.Handle("POST /v1/keys", s.signedIn(s.createKey))
	web.Handle("DELETE /v1/keys/{id}", s.signedIn(s.revokeKey))
	web.Handle("GET /v1/signins", s.signedIn(s.listSignins))
	web.Handle("DELETE /v1/signins/{id}", s.signedIn(s.revokeSignin))
	web.Handle("POST /v1/checkout", s.signedIn(s.checkout))
	web.Handle("POST /v1/device/approve", s.limit(s.limits.device, byAddr, s.signedIn(s.approve)))
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusForbidden, "cross_origin", "cross-origin request refused")
	}))
	for _, p := range []string{"/v1/session", "/v1/account", "/v1/keys", "/v1/keys/", "/v1/signins", "/v1/signins/", "/v1/checkout", "/v1/device/approve"} {
		mux.Handle(p, cop.Handler(web))
	}
	s.pageRoutes(mux)
	return s.recoverer(mux)
}

func (s *Server) tokens() http.Handler {
	if s.o.Tokens == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotImplemented, "not_implemented", "token endpoints are not configured")
		})
	}
	h := s.o.Tokens
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxTokenBody)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), accountLimitKey{}, s.limits.tokenAccount)))
	})
}

type accountLimitKey struct{}

// AccountLimit takes a token from the per-account bucket of the token endpoints, for the
// Tokens handler to call once it knows the request's account (from the API key, the refresh
// token or the device code): when ok is false, answer 429 with Retry-After. Outside a request
// the server passed to Tokens, it always allows.
func AccountLimit(ctx context.Context, accountID string) (ok bool, retryAfter time.Duration) {
	l, _ := ctx.Value(accountLimitKey{}).(*throttle.Limiter)
	return l.Allow(accountID)
}

// recoverer turns a handler panic into a 500 without the request in the log.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeError(w, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.o.Store.Version(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// storeError answers an error of the store: 503 with Retry-After when the database is
// unavailable, 404 for ErrNotFound, 500 otherwise.
func (s *Server) storeError(w http.ResponseWriter, op string, err error) {
	switch {
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		s.log.Warn(op, "err", err)
		unavailable(w)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "not found")
	default:
		s.log.Error(op, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

func unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable; retry later")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}

// clientAddr is the request's peer address without the port. A reverse proxy in front must be
// the only peer; X-Forwarded-For is not trusted.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// decode reads a JSON or form-encoded body (at most maxJSONBody) into the fields named; a
// form post and a JSON request reach the same handler.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		if err := r.ParseForm(); err != nil {
			bodyError(w, err)
			return false
		}
		m := map[string]string{}
		for k, vs := range r.PostForm {
			if len(vs) > 0 {
				m[k] = vs[0]
			}
		}
		b, _ := json.Marshal(m)
		if err := json.Unmarshal(b, v); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "malformed form")
			return false
		}
		return true
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		bodyError(w, err)
		return false
	}
	return true
}

func bodyError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
		return
	}
	writeError(w, http.StatusBadRequest, "invalid_request", "malformed request body")
}
