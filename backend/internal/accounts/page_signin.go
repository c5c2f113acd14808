package accounts

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/throttle"
)

// The sign-in page group: sign up (with the email confirmed by a mailed link), sign in, sign
// out, password reset.

// How long mailed links work.
const (
	signupTTL = 24 * time.Hour
	resetTTL  = time.Hour
)

func (s *Server) signinRoutes(pm *http.ServeMux) {
	pm.HandleFunc("GET /signin", s.signinPage)
	pm.HandleFunc("POST /signin", s.signinPost)
	pm.HandleFunc("POST /signout", s.signoutPost)
	pm.HandleFunc("GET /signup", s.signupPage)
	pm.HandleFunc("POST /signup", s.signupPost)
	pm.HandleFunc("GET /verify", s.verifyPage)
	pm.HandleFunc("POST /verify", s.verifyPost)
	pm.HandleFunc("GET /reset", s.resetPage)
	pm.HandleFunc("POST /reset", s.resetPost)
	pm.HandleFunc("GET /reset/confirm", s.resetConfirmPage)
	pm.HandleFunc("POST /reset/confirm", s.resetConfirmPost)
}

// Notices the sign-in page shows after a redirect (?done=...): fixed texts, never echoed input.
var signinNotices = map[string]string{
	"verified": "Your email is confirmed. Sign in to continue.",
	"reset":    "Your password is changed. Sign in with the new one.",
	"deleted":  "Your account and everything stored about it are deleted.",
	"out":      "You are signed out.",
}

func (s *Server) signinPage(w http.ResponseWriter, r *http.Request) {
	p := newPage("Sign in")
	p.Form["next"] = localPath(r.URL.Query().Get("next"))
	p.Notice = signinNotices[r.URL.Query().Get("done")]
	s.render(w, http.StatusOK, "signin.html", p)
}

// signinPost signs in with the same checks as POST /v1/session: limited per address and per
// email, the same answer for an unknown email and a wrong password, a new session id.
func (s *Server) signinPost(w http.ResponseWriter, r *http.Request) {
	f, ok := s.readForm(w, r)
	if !ok {
		return
	}
	p := newPage("Sign in")
	email, password := strings.TrimSpace(f.Get("email")), f.Get("password")
	p.Form["email"], p.Form["next"] = email, localPath(f.Get("next"))
	if email == "" {
		p.Errors["email"] = "Enter your email address."
	} else if len(email) > maxEmail || !cleanText(email) {
		p.Errors["email"] = checkEmail(email)
	}
	switch {
	case password == "":
		p.Errors["password"] = "Enter your password."
	case len(password) > maxCredential:
		p.Errors["password"] = "A password has at most 1024 bytes."
	}
	if len(p.Errors) > 0 {
		s.render(w, http.StatusBadRequest, "signin.html", p)
		return
	}
	if !s.pageAllow(w, p, "signin.html", "password", s.limits.sessionAddr, clientAddr(r)) ||
		!s.pageAllow(w, p, "signin.html", "password", s.limits.sessionEmail, emailLimitKey(email)) {
		return
	}
	acct, err := s.authenticate(r.Context(), email, password)
	switch {
	case errors.Is(err, errCredentials):
		s.log.Info("sign-in refused", "addr", clientAddr(r))
		p.Errors["password"] = "Wrong email or password."
		s.render(w, http.StatusUnauthorized, "signin.html", p)
		return
	case errors.Is(err, errHashing):
		s.pageStoreError(w, "sign in", fmt.Errorf("%w: %w", store.ErrUnavailable, err))
		return
	case err != nil:
		s.pageStoreError(w, "sign in", err)
		return
	}
	if err := s.startSession(w, r, acct.ID); err != nil {
		s.pageStoreError(w, "sign in", err)
		return
	}
	s.log.Info("signed in", "account", acct.ID, "via", "page")
	http.Redirect(w, r, p.Form["next"], http.StatusSeeOther)
}

// pageAllow takes a token from l's bucket for key; when there is none it shows the form again
// with the wait next to the field and returns false.
func (s *Server) pageAllow(w http.ResponseWriter, p *page, tmpl, fieldName string, l *throttle.Limiter, key string) bool {
	ok, wait := l.Allow(key)
	if ok {
		return true
	}
	throttle.RetryAfter(w, wait)
	p.Errors[fieldName] = fmt.Sprintf("Too many attempts. Wait %d seconds and try again.", throttle.Seconds(wait))
	s.render(w, http.StatusTooManyRequests, tmpl, p)
	return false
}

func (s *Server) signoutPost(w http.ResponseWriter, r *http.Request) {
	if err := s.endSession(w, r); err != nil {
		s.pageStoreError(w, "sign out", err)
		return
	}
	http.Redirect(w, r, "/signin?done=out", http.StatusSeeOther)
}

func (s *Server) signupPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "signup.html", newPage("Create an account"))
}

// signupPost checks the form and mails a confirmation link; the account is created when the
// link is followed. Whether the email has an account already is not shown here (that mail
// says so instead), so that the page does not tell who has an account.
func (s *Server) signupPost(w http.ResponseWriter, r *http.Request) {
	f, ok := s.readForm(w, r)
	if !ok {
		return
	}
	p := newPage("Create an account")
	email, name, password := strings.TrimSpace(f.Get("email")), strings.TrimSpace(f.Get("name")), f.Get("password")
	p.Form["email"], p.Form["name"] = email, name
	if m := checkEmail(email); m != "" {
		p.Errors["email"] = m
	}
	if m := checkName(name, false); m != "" {
		p.Errors["name"] = m
	}
	checkPasswordPair(p, password, f.Get("confirm"))
	if len(p.Errors) > 0 {
		s.render(w, http.StatusBadRequest, "signup.html", p)
		return
	}
	if !s.pageAllow(w, p, "signup.html", "email", s.limits.sessionAddr, clientAddr(r)) ||
		!s.pageAllow(w, p, "signup.html", "email", s.limits.sessionEmail, emailLimitKey(email)) {
		return
	}
	// The hash is computed either way, so that the answer takes as long whether or not the
	// email has an account.
	hash, err := s.hashPassword(r.Context(), password)
	if err == nil {
		_, err = s.o.Store.AccountByEmail(r.Context(), email)
	}
	switch {
	case err == nil:
		err = s.mail(r.Context(), email, "Your codingplan account",
			"Someone, maybe you, tried to create a codingplan account with this address, which has one already.\n\n"+
				"Sign in: "+s.o.Settings.URL()+"/signin\nForgot your password? "+s.o.Settings.URL()+"/reset\n\n"+
				"If it was not you, ignore this mail.\n")
	case errors.Is(err, store.ErrNotFound):
		err = s.mailLink(r.Context(), store.EmailToken{Purpose: store.PurposeSignup, Email: email, Name: name, PasswordHash: hash},
			signupTTL, email, "Confirm your codingplan account", "/verify",
			"Confirm your email to finish creating your codingplan account:\n\n%s\n\nThe link works once, for 24 hours. If you did not sign up, ignore this mail.\n")
	}
	if err != nil {
		s.pageStoreError(w, "sign up", err)
		return
	}
	s.renderMessage(w, http.StatusOK, "Check your mail", message{
		Text: "We sent a link to " + email + ". Follow it to confirm your email and finish creating your account."})
}

// checkPasswordPair puts the errors of a new password and its repetition on p.
func checkPasswordPair(p *page, password, confirm string) {
	if m := checkNewPassword(password); m != "" {
		p.Errors["password"] = m
	} else if confirm != password {
		p.Errors["confirm"] = "The two passwords differ."
	}
}

// hashPassword runs argon2id with at most cap(s.hashing) at once.
func (s *Server) hashPassword(ctx context.Context, password string) (string, error) {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %w", store.ErrUnavailable, ctx.Err())
	}
	defer func() { <-s.hashing }()
	return HashPassword(password), nil
}

// mailLink stores t with a new random token valid for ttl and mails the link
// <public_url><path>?token=... to the address; body has one %s for the link.
func (s *Server) mailLink(ctx context.Context, t store.EmailToken, ttl time.Duration, to, subject, path, body string) error {
	var b [32]byte
	rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	t.Hash, t.Created, t.Expires = hashToken(token), s.now(), s.now().Add(ttl)
	if err := s.o.Store.CreateEmailToken(ctx, t); err != nil {
		return err
	}
	return s.mail(ctx, to, subject, fmt.Sprintf(body, s.o.Settings.URL()+path+"?token="+token))
}

// mail sends one mail; a delivery failure is logged (without the address) and reported as the
// service being unavailable.
func (s *Server) mail(ctx context.Context, to, subject, body string) error {
	if err := s.mailer.Send(ctx, Message{To: to, Subject: subject, Body: body, Sent: s.now()}); err != nil {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return nil
}

// tokenParam reads a mailed link's token: 43 base64url characters, or "".
func tokenParam(v string) string {
	if len(v) != 43 {
		return ""
	}
	if _, err := base64.RawURLEncoding.DecodeString(v); err != nil {
		return ""
	}
	return v
}

var expiredLink = message{Text: "This link has expired or was used already.", Link: "/signup", LinkText: "Start again"}

// verifyPage shows a button: following a link must not change anything by itself (mail
// scanners open links), so the confirmation is a post.
func (s *Server) verifyPage(w http.ResponseWriter, r *http.Request) {
	token := tokenParam(r.URL.Query().Get("token"))
	if token == "" {
		s.renderMessage(w, http.StatusBadRequest, "Link not valid", expiredLink)
		return
	}
	p := newPage("Confirm your email")
	p.Form["token"] = token
	s.render(w, http.StatusOK, "verify.html", p)
}

func (s *Server) verifyPost(w http.ResponseWriter, r *http.Request) {
	f, ok := s.readForm(w, r)
	if !ok {
		return
	}
	token := tokenParam(f.Get("token"))
	if token == "" {
		s.renderMessage(w, http.StatusBadRequest, "Link not valid", expiredLink)
		return
	}
	t, err := s.o.Store.TakeEmailToken(r.Context(), hashToken(token), store.PurposeSignup, s.now())
	if errors.Is(err, store.ErrNotFound) {
		s.renderMessage(w, http.StatusBadRequest, "Link not valid", expiredLink)
		return
	}
	if err != nil {
		s.pageStoreError(w, "verify", err)
		return
	}
	a, err := s.o.Store.CreateAccount(r.Context(), store.Account{Email: t.Email, Name: t.Name, Plan: s.o.Settings.SignupPlan,
		Status: store.StatusActive, Created: s.now()})
	if errors.Is(err, store.ErrExists) {
		s.renderMessage(w, http.StatusConflict, "Account exists", message{
			Text: "An account with this email exists already.", Link: "/signin", LinkText: "Sign in"})
		return
	}
	if err == nil {
		err = s.o.Store.SetPassword(r.Context(), a.ID, t.PasswordHash)
	}
	if err != nil {
		s.pageStoreError(w, "verify", err)
		return
	}
	s.log.Info("account created", "account", a.ID, "via", "signup")
	http.Redirect(w, r, "/signin?done=verified", http.StatusSeeOther)
}

func (s *Server) resetPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "reset.html", newPage("Reset your password"))
}

// resetPost mails a reset link when the email has an account, and says the same either way.
func (s *Server) resetPost(w http.ResponseWriter, r *http.Request) {
	f, ok := s.readForm(w, r)
	if !ok {
		return
	}
	p := newPage("Reset your password")
	email := strings.TrimSpace(f.Get("email"))
	p.Form["email"] = email
	if m := checkEmail(email); m != "" {
		p.Errors["email"] = m
		s.render(w, http.StatusBadRequest, "reset.html", p)
		return
	}
	if !s.pageAllow(w, p, "reset.html", "email", s.limits.sessionAddr, clientAddr(r)) ||
		!s.pageAllow(w, p, "reset.html", "email", s.limits.sessionEmail, emailLimitKey(email)) {
		return
	}
	a, err := s.o.Store.AccountByEmail(r.Context(), email)
	if err == nil {
		err = s.mailLink(r.Context(), store.EmailToken{Purpose: store.PurposeReset, AccountID: a.ID}, resetTTL,
			a.Email, "Reset your codingplan password", "/reset/confirm",
			"Choose a new password for your codingplan account:\n\n%s\n\nThe link works once, for an hour. If you did not ask for it, ignore this mail: your password stays as it is.\n")
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.pageStoreError(w, "reset", err)
		return
	}
	s.renderMessage(w, http.StatusOK, "Check your mail", message{
		Text: "If an account has the address " + email + ", we sent it a link to choose a new password."})
}

func (s *Server) resetConfirmPage(w http.ResponseWriter, r *http.Request) {
	token := tokenParam(r.URL.Query().Get("token"))
	if token == "" {
		s.renderMessage(w, http.StatusBadRequest, "Link not valid", message{Text: expiredLink.Text, Link: "/reset", LinkText: "Ask for a new link"})
		return
	}
	p := newPage("Choose a new password")
	p.Form["token"] = token
	s.render(w, http.StatusOK, "resetconfirm.html", p)
}

// resetConfirmPost sets the new password and signs every browser of the account out.
func (s *Server) resetConfirmPost(w http.ResponseWriter, r *http.Request) {
	f, ok := s.readForm(w, r)
	if !ok {
		return
	}
	bad := message{Text: expiredLink.Text, Link: "/reset", LinkText: "Ask for a new link"}
	token := tokenParam(f.Get("token"))
	if token == "" {
		s.renderMessage(w, http.StatusBadRequest, "Link not valid", bad)
		return
	}
	p := newPage("Choose a new password")
	p.Form["token"] = token
	password := f.Get("password")
	checkPasswordPair(p, password, f.Get("confirm"))
	if len(p.Errors) > 0 {
		s.render(w, http.StatusBadRequest, "resetconfirm.html", p)
		return
	}
	hash, err := s.hashPassword(r.Context(), password)
	if err != nil {
		s.pageStoreError(w, "reset", err)
		return
	}
	t, err := s.o.Store.TakeEmailToken(r.Context(), hashToken(token), store.PurposeReset, s.now())
	if errors.Is(err, store.ErrNotFound) {
		s.renderMessage(w, http.StatusBadRequest, "Link not valid", bad)
		return
	}
	if err == nil {
		err = s.o.Store.SetPassword(r.Context(), t.AccountID, hash)
	}
	if err == nil {
		err = s.o.Store.DeleteSessions(r.Context(), t.AccountID)
	}
	if err != nil {
		s.pageStoreError(w, "reset", err)
		return
	}
	s.log.Info("password reset", "account", t.AccountID)
	http.Redirect(w, r, "/signin?done=reset", http.StatusSeeOther)
}
