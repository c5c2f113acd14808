package accounts

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// Bad input of the kinds an attacker or a slip of the keyboard sends.
var (
	tooLongEmail = strings.Repeat("a", 250) + "@example.com"
	scriptTag    = `<script>alert(1)</script>`
	sqlString    = `'; DROP TABLE accounts; --`
	notUTF8      = "a\xffb@example.com"
)

// TestPageBadInput: every form refuses bad input with a message next to the field, never
// echoes markup unescaped, and changes nothing in the database or the mail sent.
func TestPageBadInput(t *testing.T) {
	r := newPageRig(t, sqliteStore(t), nil)
	c := r.browser()
	r.pageSignIn(c, "ada@example.com", testPassword)
	goodToken := strings.Repeat("A", 43) // well formed, unknown
	cases := []struct {
		name   string
		path   string
		form   []string
		status int
		field  string // "" for a page-level message
		want   string // part of the message
	}{
		{"signup empty email", "/signup", []string{"email", "", "password", "longenough", "confirm", "longenough"}, 400, "email", "Enter your email"},
		{"signup long email", "/signup", []string{"email", tooLongEmail, "password", "longenough", "confirm", "longenough"}, 400, "email", "at most 254"},
		{"signup script email", "/signup", []string{"email", scriptTag, "password", "longenough", "confirm", "longenough"}, 400, "email", "like name@example.com"},
		{"signup sql email", "/signup", []string{"email", sqlString, "password", "longenough", "confirm", "longenough"}, 400, "email", "like name@example.com"},
		{"signup email with a name", "/signup", []string{"email", "Eve <eve@example.com>", "password", "longenough", "confirm", "longenough"}, 400, "email", "like name@example.com"},
		{"signup bad utf-8 email", "/signup", []string{"email", notUTF8, "password", "longenough", "confirm", "longenough"}, 400, "email", "without spaces"},
		{"signup script name", "/signup", []string{"email", "new@example.com", "name", scriptTag, "password", "longenough", "confirm", "longenough"}, 400, "name", "letters, digits"},
		{"signup sql name", "/signup", []string{"email", "new@example.com", "name", sqlString, "password", "longenough", "confirm", "longenough"}, 400, "name", "letters, digits"},
		{"signup long name", "/signup", []string{"email", "new@example.com", "name", strings.Repeat("n", 101), "password", "longenough", "confirm", "longenough"}, 400, "name", "at most 100"},
		{"signup short password", "/signup", []string{"email", "new@example.com", "password", "short", "confirm", "short"}, 400, "password", "at least 8"},
		{"signup long password", "/signup", []string{"email", "new@example.com", "password", strings.Repeat("p", 1025), "confirm", strings.Repeat("p", 1025)}, 400, "password", "at most 1024"},
		{"signup NUL password", "/signup", []string{"email", "new@example.com", "password", "longenough\x00", "confirm", "longenough\x00"}, 400, "password", "cannot be used"},
		{"signup confirm differs", "/signup", []string{"email", "new@example.com", "password", "longenough", "confirm", "longenougH"}, 400, "confirm", "differ"},
		{"signin empty email", "/signin", []string{"email", "", "password", "x"}, 400, "email", "Enter your email"},
		{"signin long email", "/signin", []string{"email", tooLongEmail, "password", "x"}, 400, "email", "at most 254"},
		{"signin script email", "/signin", []string{"email", scriptTag, "password", testPassword}, 401, "password", "Wrong email or password"},
		{"signin sql email", "/signin", []string{"email", sqlString, "password", testPassword}, 401, "password", "Wrong email or password"},
		{"signin sql password", "/signin", []string{"email", "ada@example.com", "password", sqlString}, 401, "password", "Wrong email or password"},
		{"signin empty password", "/signin", []string{"email", "ada@example.com", "password", ""}, 400, "password", "Enter your password"},
		{"signin long password", "/signin", []string{"email", "ada@example.com", "password", strings.Repeat("p", 1025)}, 400, "password", "at most 1024"},
		{"reset script email", "/reset", []string{"email", scriptTag}, 400, "email", "like name@example.com"},
		{"reset sql email", "/reset", []string{"email", sqlString}, 400, "email", "like name@example.com"},
		{"reset long email", "/reset", []string{"email", tooLongEmail}, 400, "email", "at most 254"},
		{"reset confirm short", "/reset/confirm", []string{"token", goodToken, "password", "short", "confirm", "short"}, 400, "password", "at least 8"},
		{"reset confirm long", "/reset/confirm", []string{"token", goodToken, "password", strings.Repeat("p", 1025), "confirm", "x"}, 400, "password", "at most 1024"},
		{"reset confirm differs", "/reset/confirm", []string{"token", goodToken, "password", "longenough", "confirm", sqlString}, 400, "confirm", "differ"},
		{"reset confirm unknown token", "/reset/confirm", []string{"token", goodToken, "password", "longenough", "confirm", "longenough"}, 400, "", "expired or was used"},
		{"reset confirm script token", "/reset/confirm", []string{"token", scriptTag, "password", "longenough", "confirm", "longenough"}, 400, "", "expired or was used"},
		{"verify sql token", "/verify", []string{"token", sqlString}, 400, "", "expired or was used"},
		{"verify unknown token", "/verify", []string{"token", goodToken}, 400, "", "expired or was used"},
		{"verify long token", "/verify", []string{"token", strings.Repeat("A", 5000)}, 400, "", "expired or was used"},
		{"key empty name", "/account/keys", []string{"name", " "}, 400, "name", "Enter a name"},
		{"key script name", "/account/keys", []string{"name", scriptTag}, 400, "name", "letters, digits"},
		{"key sql name", "/account/keys", []string{"name", sqlString}, 400, "name", "letters, digits"},
		{"key long name", "/account/keys", []string{"name", strings.Repeat("k", 101)}, 400, "name", "at most 100"},
		{"key control name", "/account/keys", []string{"name", "a\x01b"}, 400, "name", "letters, digits"},
		{"device empty code", "/device", []string{"user_code", "", "action", "approve"}, 400, "user_code", "Enter the code"},
		{"device script code", "/device", []string{"user_code", scriptTag, "action", "approve"}, 400, "user_code", "8 letters"},
		{"device sql code", "/device", []string{"user_code", "' OR 1=1 --", "action", "approve"}, 400, "user_code", "8 letters"},
		{"device long code", "/device", []string{"user_code", strings.Repeat("B", 40), "action", "approve"}, 400, "user_code", "8 letters"},
		{"device unknown code", "/device", []string{"user_code", "BCDF-GHJK", "action", "approve"}, 400, "user_code", "No sign-in is waiting"},
		{"device script action", "/device", []string{"user_code", "BCDF-GHJK", "action", scriptTag}, 400, "user_code", "Approve or Deny"},
		{"delete empty password", "/account/delete", []string{"password", ""}, 400, "password", "Type your password"},
		{"delete wrong password", "/account/delete", []string{"password", sqlString}, 400, "password", "Wrong password"},
		{"delete long password", "/account/delete", []string{"password", strings.Repeat("p", 1025)}, 400, "password", "at most 1024"},
		{"checkout script plan", "/billing/checkout", []string{"plan", scriptTag}, 400, "plan", "Choose one of the plans"},
		{"checkout sql plan", "/billing/checkout", []string{"plan", sqlString}, 400, "plan", "Choose one of the plans"},
		{"checkout no plan", "/billing/checkout", nil, 400, "plan", "Choose one of the plans"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, mails := r.dump(), len(r.box.list())
			a := r.post(c, tc.path, tc.form...)
			if a.code != tc.status {
				t.Errorf("status %d, want %d\n%s", a.code, tc.status, a.raw)
			}
			msg := fieldError(a.raw, tc.field)
			if tc.field == "" {
				msg = a.raw
			} else if !contains(a.raw, `aria-describedby="`+tc.field+`-error"`) && tc.field != "plan" {
				t.Errorf("field %s is not tied to its error (aria-describedby)", tc.field)
			}
			if !contains(msg, tc.want) {
				t.Errorf("message next to %q is %q, want it to say %q\n%s", tc.field, msg, tc.want, a.raw)
			}
			if contains(a.raw, "<script") {
				t.Errorf("the page holds an unescaped script tag:\n%s", a.raw)
			}
			sameRows(t, tc.name, before, r.dump())
			if n := len(r.box.list()); n != mails {
				t.Errorf("%d mails sent", n-mails)
			}
		})
	}

	// The code in a GET (verification_uri_complete) is checked the same way.
	a := r.do(c, "GET", "/device?user_code="+url.QueryEscape(scriptTag), nil)
	if a.code != 400 || !contains(fieldError(a.raw, "user_code"), "8 letters") || contains(a.raw, "<script") {
		t.Errorf("GET /device with a script tag: %d %q", a.code, fieldError(a.raw, "user_code"))
	}
	// A JSON body is not a form: every field is missing.
	before := r.dump()
	a = r.do(c, "POST", "/signup", map[string]string{"email": "new@example.com", "password": "longenough", "confirm": "longenough"})
	if a.code != 400 || fieldError(a.raw, "email") == "" {
		t.Errorf("JSON sign-up: %d, email error %q", a.code, fieldError(a.raw, "email"))
	}
	// A body over 16 KiB is refused whole.
	a = r.post(c, "/signup", "email", "x@example.com", "name", strings.Repeat("n", 20<<10))
	if a.code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form: %d, want 413", a.code)
	}
	sameRows(t, "JSON and oversized forms", before, r.dump())
}

// TestPageSignup: sign up, the mailed link confirms the email and creates the account (on
// signup_plan), sign in; the session cookie is the only one, HttpOnly and SameSite=Lax, and
// its id changes at every sign-in.
func TestPageSignup(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		r := newPageRig(t, st, nil)
		c := r.browser()
		if a := r.post(c, "/signup", "email", "Grace@Example.com", "name", "Grace H.", "password", "longenough", "confirm", "longenough"); a.code != 200 || !contains(a.raw, "Check your mail") {
			t.Fatalf("sign-up: %d %s", a.code, a.raw)
		}
		if _, err := st.AccountByEmail(t.Context(), "grace@example.com"); err == nil {
			t.Fatal("the account exists before its email is confirmed")
		}
		link := pathOf(t, r.lastLink("Grace@Example.com"))
		if !strings.HasPrefix(link, "/verify?token=") {
			t.Fatalf("link %s", link)
		}
		// Opening the link changes nothing (mail scanners open links); the button does.
		a := r.do(c, "GET", link, nil)
		if a.code != 200 || !contains(a.raw, `action="/verify"`) {
			t.Fatalf("verify page: %d %s", a.code, a.raw)
		}
		token := strings.TrimPrefix(link, "/verify?token=")
		if a := r.post(c, "/verify", "token", token); a.code != 303 || a.h.Get("Location") != "/signin?done=verified" {
			t.Fatalf("verify: %d %s %s", a.code, a.h.Get("Location"), a.raw)
		}
		if a := r.post(c, "/verify", "token", token); a.code != 400 {
			t.Errorf("the link worked twice: %d", a.code)
		}
		acct, err := st.AccountByEmail(t.Context(), "grace@example.com")
		if err != nil || acct.Plan != "lite" || acct.Name != "Grace H." {
			t.Fatalf("account %+v, %v", acct, err)
		}
		// Signing up again with a taken email mails a notice, not a link, and the page says
		// the same as for a new email.
		if a := r.post(c, "/signup", "email", "grace@example.com", "password", "otherpassword", "confirm", "otherpassword"); a.code != 200 || !contains(a.raw, "Check your mail") {
			t.Errorf("second sign-up: %d", a.code)
		}
		if m := r.box.list()[0]; !contains(m.Body, "which has one already") {
			t.Errorf("second sign-up mailed %q", m.Body)
		}

		a = r.post(c, "/signin", "email", "grace@example.com", "password", "longenough", "next", "/device?user_code=ABCD")
		if a.code != 303 || a.h.Get("Location") != "/device?user_code=ABCD" {
			t.Fatalf("sign-in: %d %q", a.code, a.h.Get("Location"))
		}
		cookies := (&http.Response{Header: a.h}).Cookies()
		if len(cookies) != 1 || cookies[0].Name != cookieName || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode || cookies[0].Secure {
			t.Fatalf("cookies %+v", cookies)
		}
		first := cookies[0].Value
		a = r.post(c, "/signin", "email", "grace@example.com", "password", "longenough", "next", "//evil.example/x")
		if a.h.Get("Location") != "/account" {
			t.Errorf("next //evil.example/x went to %q", a.h.Get("Location"))
		}
		second := (&http.Response{Header: a.h}).Cookies()[0].Value
		if second == first {
			t.Error("the session id did not change at sign-in")
		}
		old := r.client()
		u, _ := url.Parse(r.srv.URL)
		old.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: first}})
		old.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		if a := r.do(old, "GET", "/account", nil); a.code != 303 {
			t.Errorf("the session before the second sign-in still works: %d", a.code)
		}
		if a := r.do(c, "GET", "/account", nil); a.code != 200 || !contains(a.raw, "Grace@Example.com") {
			t.Errorf("account page: %d", a.code)
		}
		if a := r.post(c, "/signout"); a.code != 303 {
			t.Errorf("sign-out: %d", a.code)
		}
		if a := r.do(c, "GET", "/account", nil); a.code != 303 || a.h.Get("Location") != "/signin?next=%2Faccount" {
			t.Errorf("after sign-out: %d %q", a.code, a.h.Get("Location"))
		}
	})
}

// TestPageReset: a reset link sets a new password once and signs every browser out.
func TestPageReset(t *testing.T) {
	r := newPageRig(t, sqliteStore(t), nil)
	other := r.browser()
	r.pageSignIn(other, "ada@example.com", testPassword)
	c := r.browser()
	if a := r.post(c, "/reset", "email", "nobody@example.com"); a.code != 200 || len(r.box.list()) != 0 {
		t.Fatalf("reset of an unknown email: %d, %d mails", a.code, len(r.box.list()))
	}
	if a := r.post(c, "/reset", "email", "ADA@example.com"); a.code != 200 || !contains(a.raw, "If an account has the address") {
		t.Fatalf("reset: %d %s", a.code, a.raw)
	}
	link := pathOf(t, r.lastLink("ada@example.com"))
	if a := r.do(c, "GET", link, nil); a.code != 200 || !contains(a.raw, `action="/reset/confirm"`) {
		t.Fatalf("reset page: %d", a.code)
	}
	token := strings.TrimPrefix(link, "/reset/confirm?token=")
	if a := r.post(c, "/reset/confirm", "token", token, "password", "a new password", "confirm", "a new password"); a.code != 303 {
		t.Fatalf("reset confirm: %d %s", a.code, a.raw)
	}
	if a := r.post(c, "/reset/confirm", "token", token, "password", "third password", "confirm", "third password"); a.code != 400 {
		t.Errorf("the reset link worked twice: %d", a.code)
	}
	if a := r.do(other, "GET", "/account", nil); a.code != 303 {
		t.Errorf("a session from before the reset still works: %d", a.code)
	}
	if a := r.post(c, "/signin", "email", "ada@example.com", "password", testPassword); a.code != 401 {
		t.Errorf("the old password still works: %d", a.code)
	}
	r.pageSignIn(c, "ada@example.com", "a new password")
}

// TestPageThrottle: sign-in attempts are limited per email (and address) as POST /v1/session's.
func TestPageThrottle(t *testing.T) {
	r := newPageRig(t, sqliteStore(t), func(o *Options) { o.Settings.Rate.SessionPerMinute, o.Settings.Rate.SessionBurst = 10, 3 })
	c := r.browser()
	var a answer
	for range 4 {
		a = r.post(c, "/signin", "email", "ada@example.com", "password", "wrong password")
	}
	if a.code != http.StatusTooManyRequests || !contains(fieldError(a.raw, "password"), "Too many attempts") || a.h.Get("Retry-After") == "" {
		t.Errorf("4th attempt: %d %q Retry-After %q", a.code, fieldError(a.raw, "password"), a.h.Get("Retry-After"))
	}
	if a := r.post(c, "/signin", "email", "ada@example.com", "password", testPassword); a.code != http.StatusTooManyRequests {
		t.Errorf("the right password within the limit's wait: %d", a.code)
	}
}

// TestPageSecurity: headers of every page, cross-origin posts refused, pages behind sign-in.
func TestPageSecurity(t *testing.T) {
	for _, https := range []bool{false, true} {
		r := newPageRig(t, sqliteStore(t), func(o *Options) {
			if https {
				o.Settings.PublicURL = "https://accounts.example.com"
			}
		})
		c := r.browser()
		for _, path := range []string{"/signin", "/signup", "/reset", "/account", "/device", "/billing"} {
			a := r.do(c, "GET", path, nil)
			for h, want := range map[string]string{
				"Content-Security-Policy": contentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "no-referrer",
			} {
				if got := a.h.Get(h); got != want {
					t.Errorf("https %v %s: %s %q, want %q", https, path, h, got, want)
				}
			}
			if got := a.h.Get("Strict-Transport-Security"); (got != "") != https {
				t.Errorf("https %v %s: HSTS %q", https, path, got)
			}
		}
		if !contains(contentSecurityPolicy, "frame-ancestors 'none'") || contains(contentSecurityPolicy, "script-src") {
			t.Errorf("CSP %q", contentSecurityPolicy)
		}
	}

	r := newPageRig(t, sqliteStore(t), nil)
	c := r.browser()
	r.pageSignIn(c, "ada@example.com", testPassword)
	before := r.dump()
	for _, path := range []string{"/account/keys", "/signin", "/signout", "/account/delete", "/device"} {
		a := r.do(c, "POST", path, "name=x&email=ada%40example.com&password="+url.QueryEscape(testPassword),
			"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
		if a.code != http.StatusForbidden || !contains(a.raw, "another site") {
			t.Errorf("cross-site POST %s: %d", path, a.code)
		}
	}
	sameRows(t, "cross-site posts", before, r.dump())

	anon := r.browser()
	for path, next := range map[string]string{
		"/account":                    "/account",
		"/billing":                    "/billing",
		"/device?user_code=WDJB-MJHT": "/device?user_code=WDJB-MJHT",
	} {
		a := r.do(anon, "GET", path, nil)
		if want := "/signin?next=" + url.QueryEscape(next); a.code != 303 || a.h.Get("Location") != want {
			t.Errorf("GET %s signed out: %d %q, want %q", path, a.code, a.h.Get("Location"), want)
		}
	}
	for _, path := range []string{"/account/keys", "/account/delete", "/device", "/billing/checkout"} {
		if a := r.post(anon, path, "name", "x"); a.code != 303 || !strings.HasPrefix(a.h.Get("Location"), "/signin") {
			t.Errorf("POST %s signed out: %d %q", path, a.code, a.h.Get("Location"))
		}
	}
	for _, next := range []string{"//evil.example", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "/ok\r\nx"} {
		if got := localPath(next); got != "/account" {
			t.Errorf("localPath(%q) = %q", next, got)
		}
	}
	if a := r.do(anon, "GET", "/dev/mail", nil); a.code != 404 {
		t.Errorf("/dev/mail without dev: %d", a.code)
	}
}

// TestPageDevMail: in dev mode without SMTP, /dev/mail lists the mails with their links.
func TestPageDevMail(t *testing.T) {
	r := newPageRig(t, sqliteStore(t), func(o *Options) { o.Mailer, o.Settings.Dev = nil, true })
	c := r.browser()
	r.post(c, "/reset", "email", "ada@example.com")
	a := r.do(c, "GET", "/dev/mail", nil)
	if a.code != 200 || !contains(a.raw, "Reset your codingplan password") || !contains(a.raw, `<a href="`+DefaultSettings().URL()+`/reset/confirm?token=`) {
		t.Errorf("/dev/mail: %d %s", a.code, a.raw)
	}
}

// TestUsageChart: 30 days ending today, bars scaled to the busiest day.
func TestUsageChart(t *testing.T) {
	now := time.Date(2026, 12, 7, 23, 0, 0, 0, time.UTC)
	today, month, c := usageChart([]store.UsageDay{
		{Day: "2026-11-07", Requests: 1000, Tokens: 1}, // 31 days ago: outside
		{Day: "2026-11-08", Requests: 10, Tokens: 100},
		{Day: "2026-12-06", Requests: 40, Tokens: 400},
		{Day: "2026-12-07", Requests: 1, Tokens: 7},
	}, now)
	if today.Requests != 1 || today.Tokens != 7 || month.Requests != 51 || month.Tokens != 507 {
		t.Errorf("today %+v, month %+v", today, month)
	}
	if len(c.Bars) != 30 || c.Max != 40 || c.Bars[0].Day != "2026-11-08" || c.Bars[29].Day != "2026-12-07" {
		t.Fatalf("chart: %d bars, max %d, %s..%s", len(c.Bars), c.Max, c.Bars[0].Day, c.Bars[len(c.Bars)-1].Day)
	}
	if b := c.Bars[28]; b.H != c.Height-1 || b.Y != 1 {
		t.Errorf("busiest bar %+v", b)
	}
	if b := c.Bars[29]; b.H != 1 {
		t.Errorf("a day with one request is drawn %d high, want at least 1", b.H)
	}
	if b := c.Bars[5]; b.H != 0 || b.Requests != 0 {
		t.Errorf("an empty day %+v", b)
	}
}
