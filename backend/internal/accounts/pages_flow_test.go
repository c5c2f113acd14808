package accounts

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/codingplan/codingplan/backend/internal/billing"
)

// TestPageDevice: an editor starts a device sign-in; the page shows its client, approves it
// (or denies another); the sign-in is listed on the account page and can be signed out.
func TestPageDevice(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		r := newPageRig(t, st, nil)
		c := r.browser()
		start := func(client string) (device, user string) {
			a := r.do(nil, "POST", "/v1/device/code", "client_id="+client)
			if a.code != 200 {
				t.Fatalf("device code: %d %s", a.code, a.raw)
			}
			return a.body["device_code"].(string), a.body["user_code"].(string)
		}
		device, user := start("neovim")
		// Signed out, the complete URI leads through sign-in and back with the code.
		a := r.do(c, "GET", "/device?user_code="+user, nil)
		next := a.h.Get("Location")
		if a.code != 303 || next != "/signin?next="+url.QueryEscape("/device?user_code="+user) {
			t.Fatalf("signed out: %d %q", a.code, next)
		}
		u, _ := url.Parse(next)
		a = r.post(c, "/signin", "email", "ada@example.com", "password", testPassword, "next", u.Query().Get("next"))
		if a.h.Get("Location") != "/device?user_code="+user {
			t.Fatalf("sign-in went to %q", a.h.Get("Location"))
		}
		a = r.do(c, "GET", "/device?user_code="+strings.ToLower(strings.ReplaceAll(user, "-", "")), nil)
		if a.code != 200 || !contains(a.raw, `<strong id="client">neovim</strong>`) || !contains(a.raw, `value="approve"`) || !contains(a.raw, `value="deny"`) {
			t.Fatalf("device page: %d %s", a.code, a.raw)
		}
		if a := r.post(c, "/device", "user_code", user, "action", "approve"); a.code != 200 || !contains(a.raw, "neovim is signed in") {
			t.Fatalf("approve: %d %s", a.code, a.raw)
		}
		if a := r.post(c, "/device", "user_code", user, "action", "approve"); a.code != 400 || !contains(fieldError(a.raw, "user_code"), "used already") {
			t.Errorf("approve twice: %d %q", a.code, fieldError(a.raw, "user_code"))
		}
		tok := r.do(nil, "POST", "/v1/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
			"device_code": {device}, "client_id": {"neovim"}}.Encode())
		if tok.code != 200 {
			t.Fatalf("token: %d %s", tok.code, tok.raw)
		}
		_, other := start("vscode")
		if a := r.post(c, "/device", "user_code", other, "action", "deny"); a.code != 200 || !contains(a.raw, "vscode was not signed in") {
			t.Errorf("deny: %d %s", a.code, a.raw)
		}

		a = r.do(c, "GET", "/account", nil)
		m := regexp.MustCompile(`<strong>neovim</strong>[\s\S]*?action="/account/devices/([0-9a-f]+)/revoke"`).FindStringSubmatch(a.raw)
		if m == nil {
			t.Fatalf("account page lists no neovim sign-in:\n%s", a.raw)
		}
		if a := r.post(c, "/account/devices/"+m[1]+"/revoke"); a.code != 303 || a.h.Get("Location") != "/account?done=device-revoked" {
			t.Fatalf("revoke: %d %q", a.code, a.h.Get("Location"))
		}
		if a := r.do(c, "GET", "/account?done=device-revoked", nil); contains(a.raw, "<strong>neovim</strong>") || !contains(a.raw, "The device is signed out.") {
			t.Errorf("after revoke:\n%s", a.raw)
		}
		if got := r.rec.got; len(got) != 1 || got[0] != "revoke acct_42 "+m[1] {
			t.Errorf("notified %v", got)
		}
		if a := r.post(c, "/account/devices/nope/revoke"); a.code != 404 {
			t.Errorf("revoke unknown: %d", a.code)
		}
		// An account without a plan may not approve.
		acct, _ := st.Account(t.Context(), "acct_42")
		acct.Plan = ""
		if err := st.UpdateAccount(t.Context(), acct); err != nil {
			t.Fatal(err)
		}
		_, third := start("emacs")
		if a := r.post(c, "/device", "user_code", third, "action", "approve"); a.code != 400 || !contains(fieldError(a.raw, "user_code"), "no active plan") {
			t.Errorf("approve without a plan: %d %q", a.code, fieldError(a.raw, "user_code"))
		}
	})
}

// TestPageAccount: the account page shows plan, limit and usage; keys are created (shown
// once) and revoked; the export downloads; deletion asks for the password.
func TestPageAccount(t *testing.T) {
	r := newPageRig(t, sqliteStore(t), nil)
	st := r.st
	day := testNow.Format("2006-01-02")
	if err := r.st.(usageSetter).SetUsage(t.Context(), "acct_42", day, 12, 3400); err != nil {
		t.Fatal(err)
	}
	c := r.browser()
	r.pageSignIn(c, "ada@example.com", testPassword)
	a := r.do(c, "GET", "/account", nil)
	for _, want := range []string{`<dd id="plan">pro</dd>`, `<dd id="concurrency">3</dd>`, `<dd id="usage-today">12 requests, 3400 tokens</dd>`,
		`<dd id="usage-month">12 requests, 3400 tokens</dd>`, `<title>` + day + `: 12 requests, 3400 tokens</title>`, `name="viewport"`} {
		if !contains(a.raw, want) {
			t.Errorf("account page lacks %s", want)
		}
	}
	a = r.post(c, "/account/keys", "name", "CI runner")
	key := regexp.MustCompile(`id="new-key" type="text" readonly value="(cpk_[^"]+)"`).FindStringSubmatch(a.raw)
	if a.code != 201 || key == nil {
		t.Fatalf("create key: %d %s", a.code, a.raw)
	}
	if a := r.do(c, "GET", "/account", nil); contains(a.raw, key[1]) || !contains(a.raw, "CI runner") {
		t.Error("the key is shown again, or not listed")
	}
	if k, err := st.APIKeyByHash(t.Context(), hashToken(key[1])); err != nil || k.Name != "CI runner" {
		t.Errorf("stored key %+v %v", k, err)
	}
	keys, _ := st.ListAPIKeys(t.Context(), "acct_42")
	if a := r.post(c, "/account/keys/"+keys[0].ID+"/revoke"); a.code != 303 {
		t.Errorf("revoke key: %d", a.code)
	}
	if keys, _ := st.ListAPIKeys(t.Context(), "acct_42"); keys[0].Revoked.IsZero() {
		t.Error("key not revoked")
	}

	a = r.do(c, "GET", "/account/export", nil)
	var x Export
	if err := json.Unmarshal([]byte(a.raw), &x); err != nil || x.Account.Email != "ada@example.com" || len(x.Keys) != 1 || !x.Password ||
		!strings.HasPrefix(a.h.Get("Content-Disposition"), "attachment") {
		t.Errorf("export: %v %+v %q", err, x, a.h.Get("Content-Disposition"))
	}
	if contains(a.raw, key[1]) || contains(a.raw, "argon2id") {
		t.Error("the export holds a secret")
	}

	if a := r.post(c, "/account/delete", "password", testPassword); a.code != 303 || a.h.Get("Location") != "/signin?done=deleted" {
		t.Fatalf("delete: %d %s", a.code, a.raw)
	}
	if _, err := st.Account(t.Context(), "acct_42"); err == nil {
		t.Error("account still there")
	}
	if got := r.rec.got; len(got) < 1 || got[len(got)-1] != "revoke acct_42 " {
		t.Errorf("notified %v", got)
	}
	if a := r.do(c, "GET", "/account", nil); a.code != 303 {
		t.Errorf("signed in after deletion: %d", a.code)
	}
}

// TestPageBilling: the plans on sale, checkout through the configured provider, the portal.
func TestPageBilling(t *testing.T) {
	cfg := billing.Config{Plans: testPlans, PolarCheckoutURL: "https://buy.polar.sh/polar_cl_T3stL1nk"}
	r := newPageRig(t, sqliteStore(t), func(o *Options) {
		o.Checkout = billing.NewCheckout(cfg, nil)
		o.Settings.Billing.ManageURL = "https://polar.sh/portal"
	})
	c := r.browser()
	r.pageSignIn(c, "ada@example.com", testPassword)
	a := r.do(c, "GET", "/billing", nil)
	if !contains(a.raw, `value="max"`) || !contains(a.raw, `value="pro" checked`) || contains(a.raw, "Manage billing") {
		t.Errorf("billing page:\n%s", a.raw)
	}
	a = r.post(c, "/billing/checkout", "plan", "max")
	if a.code != 303 || !strings.HasPrefix(a.h.Get("Location"), "https://buy.polar.sh/polar_cl_T3stL1nk?") {
		t.Errorf("checkout: %d %q", a.code, a.h.Get("Location"))
	}
	if csp := a.h.Get("Content-Security-Policy"); !contains(csp, "form-action 'self' https:") {
		t.Errorf("checkout CSP %q", csp)
	}
	acct, _ := r.st.Account(t.Context(), "acct_42")
	acct.BillingProvider, acct.CustomerID = billing.Polar, "cus_1"
	if err := r.st.UpdateAccount(t.Context(), acct); err != nil {
		t.Fatal(err)
	}
	if a := r.do(c, "GET", "/billing", nil); !contains(a.raw, `<a href="https://polar.sh/portal">Manage billing</a>`) {
		t.Errorf("no portal link:\n%s", a.raw)
	}
	if a := r.do(c, "GET", "/account", nil); !contains(a.raw, `<a href="/billing">Manage billing</a>`) {
		t.Error("account page: no manage billing link")
	}
}

type usageSetter interface {
	SetUsage(ctx context.Context, accountID, day string, requests, tokens int64) error
}
