package accounts

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// The account page group: the overview (plan, limit, usage, API keys, devices), the data
// export and the account's deletion.

func (s *Server) accountRoutes(pm *http.ServeMux) {
	pm.HandleFunc("GET /account", s.accountPage)
	pm.HandleFunc("GET /account/export", s.exportDownload)
	pm.HandleFunc("GET /account/delete", s.deletePage)
	pm.HandleFunc("POST /account/delete", s.deletePost)
}

// accountView is the data of account.html.
type accountView struct {
	Account     store.Account
	Concurrency int
	Entitled    bool
	Today       UsageDay
	Month       UsageDay // the last 30 days, today included
	Chart       chart
	Keys        []KeyView
	NewKey      string // a key just created: shown this once
	Signins     []SigninView
}

// chartDays is how many days the usage chart shows, today included.
const chartDays = 30

// chart is a bar chart of requests per day, drawn as inline SVG (no script, no image request).
type chart struct {
	Width, Height int
	Bars          []bar
	Max           int64
}

type bar struct {
	X, Y, W, H int
	Day        string
	Requests   int64
	Tokens     int64
}

// usageChart sums the last chartDays days before now and draws their bars.
func usageChart(usage []store.UsageDay, now time.Time) (today, month UsageDay, c chart) {
	by := map[string]store.UsageDay{}
	for _, u := range usage {
		by[u.Day] = u
	}
	const barW, gap, height = 8, 2, 80
	c = chart{Width: chartDays * (barW + gap), Height: height}
	days := make([]store.UsageDay, chartDays)
	for i := range chartDays {
		d := now.UTC().AddDate(0, 0, i-chartDays+1).Format(time.DateOnly)
		days[i] = by[d]
		days[i].Day = d
		c.Max = max(c.Max, days[i].Requests)
		month.Requests += days[i].Requests
		month.Tokens += days[i].Tokens
	}
	last := days[chartDays-1]
	today = UsageDay{Day: last.Day, Requests: last.Requests, Tokens: last.Tokens}
	for i, d := range days {
		h := 0
		if c.Max > 0 {
			h = int(d.Requests * int64(height-1) / c.Max)
			if d.Requests > 0 {
				h = max(h, 1)
			}
		}
		c.Bars = append(c.Bars, bar{X: i * (barW + gap), Y: height - h, W: barW, H: h, Day: d.Day,
			Requests: d.Requests, Tokens: d.Tokens})
	}
	return today, month, c
}

// accountView reads what the account page shows.
func (s *Server) accountData(r *http.Request, a store.Account) (accountView, error) {
	v := accountView{Account: a, Concurrency: s.o.Settings.Plans[a.Plan].Concurrency, Entitled: entitled(a.Plan, a.Status)}
	u, err := s.o.Store.Usage(r.Context(), a.ID)
	if err != nil {
		return v, err
	}
	v.Today, v.Month, v.Chart = usageChart(u, s.now())
	keys, err := s.o.Store.ListAPIKeys(r.Context(), a.ID)
	if err != nil {
		return v, err
	}
	for _, k := range ViewKeys(keys) {
		if k.Revoked == nil {
			v.Keys = append(v.Keys, k)
		}
	}
	fams, err := s.o.Store.ListFamilies(r.Context(), a.ID)
	if err != nil {
		return v, err
	}
	for _, f := range ViewSignins(fams) {
		if f.Revoked == nil {
			v.Signins = append(v.Signins, f)
		}
	}
	return v, nil
}

// Notices the account page shows after a redirect (?done=...).
var accountNotices = map[string]string{
	"key-revoked":    "The API key is revoked.",
	"device-revoked": "The device is signed out.",
	"approved":       "The device is signed in.",
}

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAccount(w, r)
	if !ok {
		return
	}
	p := newPage("Your account")
	p.Notice = accountNotices[r.URL.Query().Get("done")]
	s.renderAccount(w, r, http.StatusOK, p, a, "")
}

// renderAccount renders account.html with p's errors and notice; newKey is a key just created.
func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, status int, p *page, a store.Account, newKey string) {
	v, err := s.accountData(r, a)
	if err != nil {
		s.pageStoreError(w, "account page", err)
		return
	}
	v.NewKey = newKey
	p.Email, p.Data = a.Email, v
	s.render(w, status, "account.html", p)
}

// exportDownload is the account's data (NewExport, as `account export`) as a JSON file.
func (s *Server) exportDownload(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAccount(w, r)
	if !ok {
		return
	}
	x, err := NewExport(r.Context(), s.o.Store, a, s.now())
	if err != nil {
		s.pageStoreError(w, "export", err)
		return
	}
	b, _ := json.MarshalIndent(x, "", "  ")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="codingplan-account.json"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

func (s *Server) deletePage(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAccount(w, r)
	if !ok {
		return
	}
	p := newPage("Delete your account")
	p.Email = a.Email
	s.render(w, http.StatusOK, "delete.html", p)
}

// deletePost deletes the account after its password is typed again: every row about it goes,
// its tokens are revoked on the routing plane, and the browser is signed out.
func (s *Server) deletePost(w http.ResponseWriter, r *http.Request) {
	a, f, p, ok := s.signedForm(w, r, "Delete your account")
	if !ok {
		return
	}
	password := f.Get("password")
	switch {
	case password == "":
		p.Errors["password"] = "Type your password to confirm."
	case len(password) > maxCredential:
		p.Errors["password"] = "A password has at most 1024 bytes."
	}
	if len(p.Errors) == 0 {
		if !s.pageAllow(w, p, "delete.html", "password", s.limits.sessionEmail, emailLimitKey(a.Email)) {
			return
		}
		switch _, err := s.authenticate(r.Context(), a.Email, password); {
		case errors.Is(err, errCredentials):
			p.Errors["password"] = "Wrong password: the account is not deleted."
		case err != nil:
			s.pageStoreError(w, "delete account", err)
			return
		}
	}
	if len(p.Errors) > 0 {
		s.render(w, http.StatusBadRequest, "delete.html", p)
		return
	}
	if err := s.o.Store.DeleteAccount(r.Context(), a.ID); err != nil {
		s.pageStoreError(w, "delete account", err)
		return
	}
	s.notifyRevoke(r, a.ID, "")
	_ = s.endSession(w, r) // its row went with the account
	s.log.Info("account deleted", "account", a.ID, "via", "page")
	http.Redirect(w, r, "/signin?done=deleted", http.StatusSeeOther)
}
