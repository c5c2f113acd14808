package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// Cookie names: with Secure (an https public_url) the __Host- prefix also pins the cookie to
// this host and path /.
const (
	cookieName       = "cp_session"
	secureCookieName = "__Host-cp_session"
)

// maxCredential caps the email and the password: argon2id over a megabyte is cheap, but a
// password that long is a mistake or an attack.
const maxCredential = 1024

// cleanText reports whether v is valid UTF-8 without NUL, as every text column must be.
func cleanText(v string) bool { return utf8.ValidString(v) && !strings.ContainsRune(v, 0) }

// validID reports whether v can be a record id (ids are hex; the store's callers' are word
// characters): anything else is unknown without asking the database.
func validID(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (s *Server) cookieName() string {
	if s.secure {
		return secureCookieName
	}
	return cookieName
}

func hashToken(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}

// signIn is POST /v1/session: {email, password} as JSON or a form. A wrong password, an unknown
// email and an account without a password get the same answer after the same work.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Email == "" || in.Password == "" || len(in.Email) > maxCredential || len(in.Password) > maxCredential {
		writeError(w, http.StatusBadRequest, "invalid_request", "email and password are required")
		return
	}
	if !s.allow(w, s.limits.sessionEmail, emailLimitKey(in.Email)) {
		return
	}
	acct, err := s.authenticate(r.Context(), in.Email, in.Password)
	switch {
	case errors.Is(err, errCredentials):
		s.log.Info("sign-in refused", "addr", clientAddr(r))
		writeError(w, http.StatusUnauthorized, "invalid_credentials", "wrong email or password")
		return
	case errors.Is(err, errHashing):
		unavailable(w)
		return
	case err != nil:
		s.storeError(w, "sign in", err)
		return
	}
	if err := s.startSession(w, r, acct.ID); err != nil {
		s.storeError(w, "sign in", err)
		return
	}
	s.log.Info("signed in", "account", acct.ID)
	writeJSON(w, http.StatusOK, map[string]string{"account_id": acct.ID})
}

// emailLimitKey is the sign-in limiter's key of an email: its hash, case-folded.
func emailLimitKey(email string) string {
	return string(hashToken(strings.ToLower(strings.TrimSpace(email))))
}

var (
	// errCredentials: the email has no account, the account no password, or the password is
	// wrong; which of them is not told.
	errCredentials = errors.New("wrong email or password")
	// errHashing: the password check did not run (the request ended while waiting for a turn).
	errHashing = errors.New("password check did not run")
)

// authenticate returns the account whose email and password these are. A wrong password, an
// unknown email and an account without a password get errCredentials after the same work;
// other errors are the store's.
func (s *Server) authenticate(ctx context.Context, email, password string) (store.Account, error) {
	// An email no account can have (a NUL, invalid UTF-8: PostgreSQL refuses to compare
	// them) goes the unknown email's way.
	acct, err := store.Account{}, error(store.ErrNotFound)
	if cleanText(email) {
		acct, err = s.o.Store.AccountByEmail(ctx, email)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Account{}, err
	}
	// The password lookup runs for an unknown email too (for an id no account has), so that
	// both take the same queries, then the same argon2id work.
	lookup := acct.ID
	if lookup == "" {
		lookup = "-"
	}
	phc := dummyHash
	switch h, err := s.o.Store.PasswordHash(ctx, lookup); {
	case err == nil && acct.ID != "":
		phc = h
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return store.Account{}, err
	}
	ok, err := s.checkPassword(ctx, phc, password)
	if err != nil && !errors.Is(err, errHashFormat) {
		return store.Account{}, fmt.Errorf("%w: %w", errHashing, err)
	}
	if !ok || phc == dummyHash || acct.ID == "" {
		return store.Account{}, errCredentials
	}
	return acct, nil
}

// startSession signs the request's browser in to the account: the old session, if any, ends,
// and a new one gets a new random id in the cookie (so that an id planted before sign-in is
// worth nothing after it).
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, accountID string) error {
	if c, err := r.Cookie(s.cookieName()); err == nil {
		_ = s.o.Store.DeleteSession(r.Context(), hashToken(c.Value))
	}
	var b [32]byte
	rand.Read(b[:])
	value := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	sess := store.Session{Hash: hashToken(value), AccountID: accountID, Created: now, Expires: now.Add(s.o.Settings.SessionTTL)}
	if err := s.o.Store.CreateSession(r.Context(), sess); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: value, Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode, Expires: sess.Expires, MaxAge: int(s.o.Settings.SessionTTL / time.Second),
	})
	return nil
}

// endSession deletes the request's session, if any, and clears the cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(s.cookieName()); err == nil {
		if err := s.o.Store.DeleteSession(r.Context(), hashToken(c.Value)); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: "", Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
	return nil
}

// checkPassword runs argon2id with at most cap(s.hashing) at once (19 MiB each).
func (s *Server) checkPassword(ctx context.Context, phc, password string) (bool, error) {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.hashing }()
	return CheckPassword(phc, password)
}

// signOut is DELETE /v1/session.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	if err := s.endSession(w, r); err != nil {
		s.storeError(w, "sign out", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// session returns the signed-in session's account id. ok is false when an answer was written.
func (s *Server) session(w http.ResponseWriter, r *http.Request) (accountID string, ok bool) {
	c, err := r.Cookie(s.cookieName())
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		writeError(w, http.StatusUnauthorized, "unauthenticated", "sign in first")
		return "", false
	}
	sess, err := s.o.Store.SessionByHash(r.Context(), hashToken(c.Value))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !s.now().Before(sess.Expires)) {
		writeError(w, http.StatusUnauthorized, "unauthenticated", "sign in first")
		return "", false
	}
	if err != nil {
		s.storeError(w, "session", err)
		return "", false
	}
	return sess.AccountID, true
}

// signedIn runs h with the signed-in account's id, under the per-account limit.
func (s *Server) signedIn(h func(w http.ResponseWriter, r *http.Request, accountID string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.session(w, r)
		if !ok || !s.allow(w, s.limits.account, id) {
			return
		}
		h(w, r, id)
	})
}
