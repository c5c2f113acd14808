package accounts

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/throttle"
)

// The web pages: server-rendered html/template files embedded in the binary, one handler file
// per page group (page_signin.go, page_account.go, page_keys.go, page_device.go,
// page_billing.go), a small stylesheet and no script. Forms post back to the page, which
// validates on the server and shows errors next to the field.

//go:embed pages
var pageFiles embed.FS

// pages are the parsed templates by file name ("signin.html"), each the layout plus its content.
type pages struct {
	t   map[string]*template.Template
	css []byte
}

var pageFuncs = template.FuncMap{
	"field":    newField,
	"optional": func(f field) field { f.Required = false; return f },
	"when":     when,
}

func parsePages() pages {
	layout := template.Must(template.New("layout.html").Funcs(pageFuncs).ParseFS(pageFiles, "pages/layout.html"))
	p := pages{t: map[string]*template.Template{}}
	names, _ := fs.Glob(pageFiles, "pages/*.html")
	for _, n := range names {
		name := strings.TrimPrefix(n, "pages/")
		if name == "layout.html" {
			continue
		}
		p.t[name] = template.Must(template.Must(layout.Clone()).ParseFS(pageFiles, n))
	}
	p.css, _ = pageFiles.ReadFile("pages/style.css")
	return p
}

// page is what every template gets.
type page struct {
	Title  string
	Email  string            // the signed-in account's email; "" when signed out
	Notice string            // a message above the content
	Errors map[string]string // by field name; "" for the form as a whole
	Form   map[string]string // values to show again (never passwords)
	Data   any               // the page's own data
}

func newPage(title string) *page {
	return &page{Title: title, Errors: map[string]string{}, Form: map[string]string{}}
}

// field is one labelled input with its error.
type field struct {
	Name, Label, Type, Auto, Value, Error string
	Required                              bool
}

func newField(p *page, name, label, typ, auto string) field {
	f := field{Name: name, Label: label, Type: typ, Auto: auto, Error: p.Errors[name], Required: true}
	if typ != "password" {
		f.Value = p.Form[name]
	}
	return f
}

// when shows a time to the minute in UTC, or "never".
func when(t any) string {
	var v time.Time
	switch x := t.(type) {
	case time.Time:
		v = x
	case *time.Time:
		if x != nil {
			v = *x
		}
	}
	if v.IsZero() {
		return "never"
	}
	return v.UTC().Format("2006-01-02 15:04 UTC")
}

// render writes the page with its status.
func (s *Server) render(w http.ResponseWriter, status int, name string, p *page) {
	t := s.pages.t[name]
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		s.log.Error("rendering a page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// message is the data of message.html: a sentence and a link onwards.
type message struct {
	Text, Link, LinkText string
}

// renderMessage renders a page that only says something.
func (s *Server) renderMessage(w http.ResponseWriter, status int, title string, m message) {
	p := newPage(title)
	p.Data = m
	s.render(w, status, "message.html", p)
}

// pageStoreError answers a store error with a page: 503 with Retry-After when the database is
// away, 500 otherwise.
func (s *Server) pageStoreError(w http.ResponseWriter, op string, err error) {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn(op, "err", err)
		w.Header().Set("Retry-After", "5")
		s.renderMessage(w, http.StatusServiceUnavailable, "Temporarily unavailable",
			message{Text: "The service cannot reach its database right now. Try again in a few seconds."})
		return
	}
	s.log.Error(op, "err", err)
	s.renderMessage(w, http.StatusInternalServerError, "Something went wrong",
		message{Text: "The request failed on our side. Try again later.", Link: "/account", LinkText: "Back to your account"})
}

// contentSecurityPolicy allows the stylesheet from this origin and nothing else: no script, no
// frames, forms post here only (checkout's form may go on to the provider's https page).
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// pageHeaders sets the security headers of every page.
func (s *Server) pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		csp := contentSecurityPolicy
		if r.URL.Path == "/billing/checkout" {
			csp = strings.Replace(csp, "form-action 'self'", "form-action 'self' https:", 1)
		}
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer") // links carry tokens and user codes
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.ServeHTTP(w, r)
	})
}

// pageRoutes mounts the pages on mux. Every page refuses cross-origin posts (Go's
// CrossOriginProtection: Sec-Fetch-Site, Origin) on top of the SameSite=Lax cookie.
func (s *Server) pageRoutes(mux *http.ServeMux) {
	pm := http.NewServeMux()
	pm.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
	})
	pm.HandleFunc("GET /static/style.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(s.pages.css)
	})
	s.signinRoutes(pm)
	s.accountRoutes(pm)
	s.keyRoutes(pm)
	s.deviceRoutes(pm)
	s.billingRoutes(pm)
	if s.o.Settings.Dev && s.mailbox != nil {
		pm.HandleFunc("GET /dev/mail", s.devMail)
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.renderMessage(w, http.StatusForbidden, "Request refused",
			message{Text: "This form was sent from another site, so it was refused.", Link: "/account", LinkText: "Back to your account"})
	}))
	h := s.pageHeaders(cop.Handler(pm))
	for _, p := range []string{"/{$}", "/static/", "/signin", "/signup", "/verify", "/signout", "/reset", "/reset/",
		"/account", "/account/", "/device", "/billing", "/billing/", "/dev/mail"} {
		mux.Handle(p, h)
	}
}

// pageAccount returns the signed-in account for a page, or sends the browser to the sign-in page
// (and back here after it) and returns ok false. Requests are limited per account, as the API's.
func (s *Server) pageAccount(w http.ResponseWriter, r *http.Request) (store.Account, bool) {
	c, err := r.Cookie(s.cookieName())
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		s.toSignIn(w, r)
		return store.Account{}, false
	}
	sess, err := s.o.Store.SessionByHash(r.Context(), hashToken(c.Value))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !s.now().Before(sess.Expires)) {
		s.toSignIn(w, r)
		return store.Account{}, false
	}
	if err != nil {
		s.pageStoreError(w, "session", err)
		return store.Account{}, false
	}
	if ok, wait := s.limits.account.Allow(sess.AccountID); !ok {
		throttle.RetryAfter(w, wait)
		s.renderMessage(w, http.StatusTooManyRequests, "Too many requests",
			message{Text: "Too many requests from your account. Wait a minute and try again."})
		return store.Account{}, false
	}
	a, err := s.o.Store.Account(r.Context(), sess.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		s.toSignIn(w, r)
		return store.Account{}, false
	}
	if err != nil {
		s.pageStoreError(w, "account", err)
		return store.Account{}, false
	}
	return a, true
}

// signedForm starts a signed-in form post: the account, the form, and the page titled title
// to answer with. ok is false when an answer was written (sign-in, limits, a bad body).
func (s *Server) signedForm(w http.ResponseWriter, r *http.Request, title string) (store.Account, url.Values, *page, bool) {
	a, ok := s.pageAccount(w, r)
	if !ok {
		return a, nil, nil, false
	}
	f, ok := s.readForm(w, r)
	if !ok {
		return a, nil, nil, false
	}
	p := newPage(title)
	p.Email = a.Email
	return a, f, p, true
}

// toSignIn sends the browser to the sign-in page, to come back to this page (a GET) after it.
func (s *Server) toSignIn(w http.ResponseWriter, r *http.Request) {
	next := "/account"
	if r.Method == http.MethodGet {
		next = r.URL.RequestURI()
	}
	http.Redirect(w, r, "/signin?next="+url.QueryEscape(localPath(next)), http.StatusSeeOther)
}

// localPath is next if it is a path on this site, else "/account": a sign-in never sends the
// browser elsewhere.
func localPath(next string) string {
	if next == "" || len(next) > 512 || next[0] != '/' || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\\r\n\t") {
		return "/account"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/account"
	}
	return next
}

// readForm parses a posted form of at most maxJSONBody bytes; when it cannot, it answers with
// a page and returns ok false.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.renderMessage(w, http.StatusRequestEntityTooLarge, "Form too large",
				message{Text: "The form sent more than 16 KiB. Go back and shorten what you typed."})
			return nil, false
		}
		s.renderMessage(w, http.StatusBadRequest, "Malformed form",
			message{Text: "The form could not be read. Go back and send it again."})
		return nil, false
	}
	return r.PostForm, true
}

// devMail is GET /dev/mail (settings dev, no SMTP): the mails the pages sent, newest first.
func (s *Server) devMail(w http.ResponseWriter, r *http.Request) {
	type shown struct {
		Message
		Links []string
	}
	var list []shown
	for _, m := range s.mailbox.list() {
		var links []string
		for _, f := range strings.Fields(m.Body) {
			if strings.HasPrefix(f, s.o.Settings.URL()+"/") {
				links = append(links, f)
			}
		}
		list = append(list, shown{m, links})
	}
	p := newPage("Mail sent (development)")
	p.Data = list
	s.render(w, http.StatusOK, "devmail.html", p)
}

// revokeOne revokes the key or sign-in named by the path's {id} (revoke is the store's
// RevokeAPIKey or RevokeFamily), tells the routing plane, and goes back to the account page
// with the done notice.
func (s *Server) revokeOne(w http.ResponseWriter, r *http.Request, accountID, what string,
	revoke func(ctx context.Context, accountID, id string, at time.Time) error, done string) {
	id := r.PathValue("id")
	err := store.ErrNotFound
	if validID(id) {
		err = revoke(r.Context(), accountID, id, s.now())
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.renderMessage(w, http.StatusNotFound, "Not found", message{
			Text: "Your account has no such " + what + ".", Link: "/account", LinkText: "Back to your account"})
		return
	case err != nil:
		s.pageStoreError(w, "revoke "+what, err)
		return
	}
	s.log.Info(what+" revoked", "account", accountID, "id", id, "via", "page")
	s.notifyRevoke(r, accountID, id)
	http.Redirect(w, r, "/account?done="+done, http.StatusSeeOther)
}
