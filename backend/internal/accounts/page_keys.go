package accounts

import (
	"net/http"
	"strings"
)

// The API keys page group: create (the key is shown once, on the page that answers the post)
// and revoke, from the account page.

func (s *Server) keyRoutes(pm *http.ServeMux) {
	pm.HandleFunc("POST /account/keys", s.createKeyPost)
	pm.HandleFunc("POST /account/keys/{id}/revoke", s.revokeKeyPost)
}

func (s *Server) createKeyPost(w http.ResponseWriter, r *http.Request) {
	a, f, p, ok := s.signedForm(w, r, "Your account")
	if !ok {
		return
	}
	name := strings.TrimSpace(f.Get("name"))
	p.Form["name"] = name
	if m := checkName(name, true); m != "" {
		p.Errors["name"] = m
		s.renderAccount(w, r, http.StatusBadRequest, p, a, "")
		return
	}
	if s.o.Keys == nil {
		p.Errors["name"] = "API keys are not available on this server."
		s.renderAccount(w, r, http.StatusNotImplemented, p, a, "")
		return
	}
	key, rec, err := s.o.Keys.NewAPIKey(r.Context(), a.ID, name)
	if err != nil {
		s.pageStoreError(w, "create key", err)
		return
	}
	s.log.Info("api key created", "account", a.ID, "key", rec.ID, "via", "page")
	p.Form["name"] = ""
	p.Notice = "Key “" + name + "” created. Copy it now: it is not shown again."
	s.renderAccount(w, r, http.StatusCreated, p, a, key)
}

func (s *Server) revokeKeyPost(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAccount(w, r)
	if !ok {
		return
	}
	s.revokeOne(w, r, a.ID, "key", s.o.Store.RevokeAPIKey, "key-revoked")
}
