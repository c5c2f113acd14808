package accounts

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// AccountView is an account as the API and the CLI's --json show it.
type AccountView struct {
	ID      string     `json:"id"`
	Email   string     `json:"email"`
	Name    string     `json:"name"`
	Plan    string     `json:"plan"`
	Status  string     `json:"status"`
	Created time.Time  `json:"created"`
	Billing string     `json:"billing_provider,omitempty"`
	Usage   []UsageDay `json:"usage"`
}

// UsageDay is one day's counts.
type UsageDay struct {
	Day      string `json:"day"`
	Requests int64  `json:"requests"`
	Tokens   int64  `json:"tokens"`
}

// KeyView is an API key without its secret.
type KeyView struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Prefix   string     `json:"prefix"`
	Created  time.Time  `json:"created"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Revoked  *time.Time `json:"revoked,omitempty"`
}

// SigninView is one editor sign-in (a refresh-token family).
type SigninView struct {
	ID       string     `json:"id"`
	Client   string     `json:"client"`
	Created  time.Time  `json:"created"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Revoked  *time.Time `json:"revoked,omitempty"`
}

func opt(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// ViewAccount builds the view of an account and its usage.
func ViewAccount(a store.Account, usage []store.UsageDay) AccountView {
	v := AccountView{ID: a.ID, Email: a.Email, Name: a.Name, Plan: a.Plan, Status: a.Status, Created: a.Created,
		Billing: a.BillingProvider, Usage: []UsageDay{}}
	for _, u := range usage {
		v.Usage = append(v.Usage, UsageDay{Day: u.Day, Requests: u.Requests, Tokens: u.Tokens})
	}
	return v
}

// ViewKeys builds the views of API keys.
func ViewKeys(keys []store.APIKey) []KeyView {
	out := []KeyView{}
	for _, k := range keys {
		out = append(out, KeyView{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Created: k.Created,
			LastUsed: opt(k.LastUsed), Revoked: opt(k.Revoked)})
	}
	return out
}

// ViewSignins builds the views of sign-ins.
func ViewSignins(fams []store.Family) []SigninView {
	out := []SigninView{}
	for _, f := range fams {
		out = append(out, SigninView{ID: f.ID, Client: f.Client, Created: f.Created, LastUsed: opt(f.LastUsed),
			Revoked: opt(f.Revoked)})
	}
	return out
}

// account is GET /v1/account.
func (s *Server) account(w http.ResponseWriter, r *http.Request, id string) {
	a, err := s.o.Store.Account(r.Context(), id)
	if err != nil {
		s.storeError(w, "account", err)
		return
	}
	u, err := s.o.Store.Usage(r.Context(), id)
	if err != nil {
		s.storeError(w, "account usage", err)
		return
	}
	writeJSON(w, http.StatusOK, ViewAccount(a, u))
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, id string) {
	keys, err := s.o.Store.ListAPIKeys(r.Context(), id)
	if err != nil {
		s.storeError(w, "list keys", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": ViewKeys(keys)})
}

// ValidName checks a key's name: 1 to 100 printable characters.
func ValidName(name string) bool {
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) {
		return false
	}
	return !strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// createKey is POST /v1/keys {name}: the key is in this answer only.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request, id string) {
	var in struct {
		Name string `json:"name"`
	}
	if !decode(w, r, &in) {
		return
	}
	in.Name = strings.TrimSpace(in.Name)
	if !ValidName(in.Name) {
		writeError(w, http.StatusBadRequest, "invalid_name", "a key needs a name of 1 to 100 printable characters")
		return
	}
	if s.o.Keys == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "API keys are not configured")
		return
	}
	key, rec, err := s.o.Keys.NewAPIKey(r.Context(), id, in.Name)
	if err != nil {
		s.storeError(w, "create key", err)
		return
	}
	s.log.Info("api key created", "account", id, "key", rec.ID)
	writeJSON(w, http.StatusCreated, struct {
		KeyView
		Key string `json:"key"`
	}{ViewKeys([]store.APIKey{rec})[0], key})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, id string) {
	kid := r.PathValue("id")
	if !validID(kid) {
		writeError(w, http.StatusNotFound, "not_found", "not found")
		return
	}
	if err := s.o.Store.RevokeAPIKey(r.Context(), id, kid, s.now()); err != nil {
		s.storeError(w, "revoke key", err)
		return
	}
	s.log.Info("api key revoked", "account", id, "key", kid)
	s.notifyRevoke(r, id, kid)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listSignins(w http.ResponseWriter, r *http.Request, id string) {
	fams, err := s.o.Store.ListFamilies(r.Context(), id)
	if err != nil {
		s.storeError(w, "list sign-ins", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"signins": ViewSignins(fams)})
}

func (s *Server) revokeSignin(w http.ResponseWriter, r *http.Request, id string) {
	fid := r.PathValue("id")
	if !validID(fid) {
		writeError(w, http.StatusNotFound, "not_found", "not found")
		return
	}
	if err := s.o.Store.RevokeFamily(r.Context(), id, fid, s.now()); err != nil {
		s.storeError(w, "revoke sign-in", err)
		return
	}
	s.log.Info("sign-in revoked", "account", id, "signin", fid)
	s.notifyRevoke(r, id, fid)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) notifyRevoke(r *http.Request, accountID, sid string) {
	if s.o.Notify == nil {
		return
	}
	if err := s.o.Notify.Revoke(r.Context(), accountID, sid); err != nil {
		s.log.Warn("revocation not published", "account", accountID, "err", err)
	}
}

// approve is POST /v1/device/approve {user_code, action: "approve" | "deny"}.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, id string) {
	var in struct {
		UserCode string `json:"user_code"`
		Action   string `json:"action"`
	}
	if !decode(w, r, &in) {
		return
	}
	if !s.allow(w, s.limits.deviceAccount, id) {
		return
	}
	code := strings.TrimSpace(in.UserCode)
	if code == "" || !cleanText(code) || len(code) > 32 || (in.Action != "approve" && in.Action != "deny") {
		writeError(w, http.StatusBadRequest, "invalid_request", `user_code and action ("approve" or "deny") are required`)
		return
	}
	if s.o.Approver == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "device sign-in is not configured")
		return
	}
	var err error
	if in.Action == "approve" {
		err = s.o.Approver.Approve(r.Context(), code, id)
	} else {
		err = s.o.Approver.Deny(r.Context(), code)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "invalid_user_code", "no pending sign-in has this code")
		return
	case errors.Is(err, ErrNotEntitled):
		writeError(w, http.StatusForbidden, "not_entitled", "the account has no active plan")
		return
	case err != nil:
		s.storeError(w, "device "+in.Action, err)
		return
	}
	s.log.Info("device sign-in decided", "account", id, "action", in.Action)
	w.WriteHeader(http.StatusNoContent)
}
