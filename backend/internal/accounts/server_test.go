package accounts

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/throttle"
	"github.com/codingplan/codingplan/backend/internal/tokens"
)

func TestSignIn(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		r := newRig(t, st, func(o *Options) { o.Settings.Rate = Rates{} })
		wrong := r.do(nil, "POST", "/v1/session", map[string]string{"email": "ada@example.com", "password": "nope"})
		unknown := r.do(nil, "POST", "/v1/session", map[string]string{"email": "eve@example.com", "password": "nope"})
		if wrong.code != http.StatusUnauthorized || unknown.code != wrong.code || unknown.raw != wrong.raw {
			t.Errorf("wrong password: %d %s; unknown email: %d %s: want the same 401", wrong.code, wrong.raw, unknown.code, unknown.raw)
		}
		if wrong.h.Get("Set-Cookie") != "" || unknown.h.Get("Set-Cookie") != "" {
			t.Error("a refused sign-in set a cookie")
		}
		// The right password: one cookie with the flags, a new value each time.
		var values []string
		for range 2 {
			a := r.do(nil, "POST", "/v1/session", "email=ADA%40example.com&password="+strings.ReplaceAll(testPassword, " ", "+"))
			if a.code != 200 {
				t.Fatalf("sign-in: %d %s", a.code, a.raw)
			}
			cookies := (&http.Response{Header: a.h}).Cookies()
			if len(cookies) != 1 {
				t.Fatalf("cookies: %v", cookies)
			}
			c := cookies[0]
			if c.Name != cookieName || !c.HttpOnly || c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
				t.Errorf("cookie flags: %+v", c)
			}
			values = append(values, c.Value)
		}
		if values[0] == values[1] {
			t.Error("two sign-ins got the same session id")
		}
		c := r.client()
		r.signIn(c)
		a := r.do(c, "GET", "/v1/account", nil)
		if a.code != 200 || a.body["id"] != "acct_42" || a.body["email"] != "ada@example.com" || a.body["plan"] != "pro" || a.body["status"] != "active" {
			t.Errorf("account: %d %s", a.code, a.raw)
		}
		if a := r.do(nil, "GET", "/v1/account", nil); a.code != 401 {
			t.Errorf("account without a session: %d", a.code)
		}
		// The session expires on the server.
		r.clock.Add(DefaultSettings().SessionTTL)
		if a := r.do(c, "GET", "/v1/account", nil); a.code != 401 {
			t.Errorf("account after the session's expiry: %d", a.code)
		}
		r.clock.Add(-DefaultSettings().SessionTTL)
		r.signIn(c)
		if a := r.do(c, "DELETE", "/v1/session", nil); a.code != 204 {
			t.Errorf("sign-out: %d", a.code)
		}
		if a := r.do(c, "GET", "/v1/account", nil); a.code != 401 {
			t.Errorf("account after sign-out: %d", a.code)
		}
	})
}

func TestSecureCookie(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		r := newRig(t, st, func(o *Options) { o.Settings.PublicURL = "https://accounts.example.com" })
		a := r.do(nil, "POST", "/v1/session", map[string]string{"email": "ada@example.com", "password": testPassword})
		cookies := (&http.Response{Header: a.h}).Cookies()
		if a.code != 200 || len(cookies) != 1 || cookies[0].Name != secureCookieName || !cookies[0].Secure {
			t.Errorf("https public_url: %d %v", a.code, cookies)
		}
	})
}

func TestCrossOrigin(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		r := newRig(t, st, nil)
		form := "email=ada%40example.com&password=" + strings.ReplaceAll(testPassword, " ", "+")
		for _, h := range [][]string{
			{"Sec-Fetch-Site", "cross-site"},
			{"Origin", "https://evil.example"},
		} {
			if a := r.do(nil, "POST", "/v1/session", form, h...); a.code != http.StatusForbidden || a.h.Get("Set-Cookie") != "" {
				t.Errorf("%v: %d %s, want 403", h, a.code, a.raw)
			}
		}
		c := r.client()
		r.signIn(c)
		if a := r.do(c, "POST", "/v1/keys", map[string]string{"name": "x"}, "Sec-Fetch-Site", "cross-site"); a.code != 403 {
			t.Errorf("cross-site key creation: %d", a.code)
		}
		if a := r.do(nil, "POST", "/v1/session", form, "Sec-Fetch-Site", "same-origin"); a.code != 200 {
			t.Errorf("same-origin sign-in: %d %s", a.code, a.raw)
		}
	})
}

func TestKeysAndSignins(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		r := newRig(t, st, nil)
		c := r.client()
		r.signIn(c)
		a := r.do(c, "POST", "/v1/keys", map[string]string{"name": "laptop"})
		key, _ := a.body["key"].(string)
		id, _ := a.body["id"].(string)
		if a.code != 201 || !strings.HasPrefix(key, "cpk_") || a.body["prefix"] != key[:len(tokens.APIKeyPrefix)+8] {
			t.Fatalf("create key: %d %s", a.code, a.raw)
		}
		if k, err := st.APIKeyByHash(t.Context(), hashToken(key)); err != nil || k.ID != id || k.AccountID != "acct_42" {
			t.Errorf("stored key: %+v %v", k, err)
		}
		a = r.do(c, "GET", "/v1/keys", nil)
		if a.code != 200 || strings.Contains(a.raw, key) || !strings.Contains(a.raw, id) {
			t.Errorf("list keys: %d %s", a.code, a.raw)
		}
		if a := r.do(c, "POST", "/v1/keys", map[string]string{"name": ""}); a.code != 400 {
			t.Errorf("a key without a name: %d", a.code)
		}
		// Another account cannot revoke it.
		other, _ := st.CreateAccount(t.Context(), store.Account{Email: "bob@example.com"})
		st.SetPassword(t.Context(), other.ID, HashPassword(testPassword))
		bob := r.client()
		if a := r.do(bob, "POST", "/v1/session", map[string]string{"email": "bob@example.com", "password": testPassword}); a.code != 200 {
			t.Fatal(a.raw)
		}
		if a := r.do(bob, "DELETE", "/v1/keys/"+id, nil); a.code != 404 {
			t.Errorf("revoke another account's key: %d", a.code)
		}
		if a := r.do(c, "DELETE", "/v1/keys/"+id, nil); a.code != 204 {
			t.Errorf("revoke key: %d %s", a.code, a.raw)
		}
		if k, _ := st.APIKeyByHash(t.Context(), hashToken(key)); k.Revoked.IsZero() {
			t.Error("the key is not revoked")
		}
		// Sign-ins.
		if err := st.(interface {
			CreateFamily(context.Context, store.Family, []byte) error
		}).CreateFamily(t.Context(), store.Family{ID: "fam_1", AccountID: "acct_42", Client: "vscode", Created: testNow}, []byte("h")); err != nil {
			t.Fatal(err)
		}
		if a := r.do(c, "GET", "/v1/signins", nil); a.code != 200 || !strings.Contains(a.raw, `"fam_1"`) {
			t.Errorf("list sign-ins: %d %s", a.code, a.raw)
		}
		if a := r.do(bob, "DELETE", "/v1/signins/fam_1", nil); a.code != 404 {
			t.Errorf("revoke another account's sign-in: %d", a.code)
		}
		if a := r.do(c, "DELETE", "/v1/signins/fam_1", nil); a.code != 204 {
			t.Errorf("revoke sign-in: %d", a.code)
		}
	})
}

// fakeApprover records the device decisions.
type fakeApprover struct {
	approve func(ctx context.Context, userCode, accountID string) error
	deny    func(ctx context.Context, userCode string) error
}

func (f fakeApprover) Approve(ctx context.Context, c, a string) error { return f.approve(ctx, c, a) }
func (f fakeApprover) Deny(ctx context.Context, c string) error       { return f.deny(ctx, c) }

func TestDeviceApprove(t *testing.T) {
	var got []string
	ap := fakeApprover{
		approve: func(_ context.Context, code, acct string) error {
			if code != "BDFG-HJKL" {
				return store.ErrNotFound
			}
			got = append(got, "approve "+code+" "+acct)
			return nil
		},
		deny: func(_ context.Context, code string) error { got = append(got, "deny "+code); return nil },
	}
	dialects(t, func(t *testing.T, st full, _ string) {
		got = nil
		r := newRig(t, st, func(o *Options) { o.Approver = ap })
		if a := r.do(nil, "POST", "/v1/device/approve", map[string]string{"user_code": "BDFG-HJKL", "action": "approve"}); a.code != 401 {
			t.Errorf("approve without a session: %d", a.code)
		}
		c := r.client()
		r.signIn(c)
		for _, tt := range []struct {
			code, action string
			want         int
		}{
			{"BDFG-HJKL", "approve", 204}, {"BDFG-HJKL", "deny", 204}, {"XXXX-XXXX", "approve", 404}, {"BDFG-HJKL", "maybe", 400},
		} {
			if a := r.do(c, "POST", "/v1/device/approve", map[string]string{"user_code": tt.code, "action": tt.action}); a.code != tt.want {
				t.Errorf("%s %s: %d %s, want %d", tt.action, tt.code, a.code, a.raw, tt.want)
			}
		}
		if want := []string{"approve BDFG-HJKL acct_42", "deny BDFG-HJKL"}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("decisions: %q, want %q", got, want)
		}
	})
}

func TestTokensSeam(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		var paths []string
		r := newRig(t, st, func(o *Options) {
			o.Tokens = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				paths = append(paths, req.Method+" "+req.URL.Path)
				if ok, wait := AccountLimit(req.Context(), "acct_42"); !ok {
					throttle.RetryAfter(w, wait)
					w.WriteHeader(429)
					return
				}
				w.WriteHeader(299)
			})
		})
		for _, p := range []string{"POST /v1/token", "POST /v1/device/code", "GET /.well-known/jwks.json"} {
			method, path, _ := strings.Cut(p, " ")
			if a := r.do(nil, method, path, "grant_type=x"); a.code != 299 {
				t.Errorf("%s: %d", p, a.code)
			}
		}
		if want := "POST /v1/token|POST /v1/device/code|GET /.well-known/jwks.json"; strings.Join(paths, "|") != want {
			t.Errorf("Tokens saw %q", paths)
		}
		// The per-account bucket, through AccountLimit, from any address.
		var last answer
		for range DefaultSettings().Rate.TokenBurst {
			last = r.do(nil, "GET", "/.well-known/jwks.json", nil)
		}
		if last.code != 429 || last.h.Get("Retry-After") == "" {
			t.Errorf("AccountLimit over the burst: %d", last.code)
		}
		bare := httptest.NewServer(New(Options{Store: r.ts}))
		defer bare.Close()
		resp, err := http.Post(bare.URL+"/v1/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 501 {
			t.Errorf("/v1/token without Tokens: %d", resp.StatusCode)
		}
	})
}

func TestRateLimit(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		r := newRig(t, st, nil)
		burst := DefaultSettings().Rate.SessionBurst
		var last answer
		for range burst + 1 {
			last = r.do(nil, "POST", "/v1/session", map[string]string{"email": "eve@example.com", "password": "x"})
		}
		if last.code != http.StatusTooManyRequests || last.h.Get("Retry-After") == "" {
			t.Errorf("sign-in %d: %d %q, want 429 with Retry-After", burst+1, last.code, last.h.Get("Retry-After"))
		}
		// The bucket refills with time.
		r.clock.Add(time.Minute)
		if a := r.do(nil, "POST", "/v1/session", map[string]string{"email": "ada@example.com", "password": testPassword}); a.code != 200 {
			t.Errorf("after a minute: %d %s", a.code, a.raw)
		}
		for range DefaultSettings().Rate.TokenBurst {
			r.do(nil, "POST", "/v1/token", "grant_type=x")
		}
		if a := r.do(nil, "POST", "/v1/token", "grant_type=x"); a.code != 429 || a.h.Get("Retry-After") == "" {
			t.Errorf("token endpoint over its limit: %d", a.code)
		}
	})
}

func TestInjection(t *testing.T) {
	inputs := []string{
		`' OR '1'='1`, `'; DROP TABLE accounts; --`, `" OR ""="`, `\x00`, "a\x00b", `%' --`,
		`admin@example.com' --`, `1; DELETE FROM api_keys`, `<script>alert(1)</script>`, strings.Repeat("A", 2000),
		`{"$gt": ""}`, "../../etc/passwd", "ada@example.com\r\nSet-Cookie: x=1",
	}
	dialects(t, func(t *testing.T, st full, _ string) {
		r := newRig(t, st, func(o *Options) {
			o.Settings.Rate = Rates{} // no limits here
			o.Approver = fakeApprover{
				approve: func(context.Context, string, string) error { return store.ErrNotFound },
				deny:    func(context.Context, string) error { return store.ErrNotFound },
			}
		})
		c := r.client()
		r.signIn(c)
		for _, in := range inputs {
			for _, a := range []answer{
				r.do(nil, "POST", "/v1/session", map[string]string{"email": in, "password": in}),
				r.do(nil, "POST", "/v1/session", map[string]string{"email": "ada@example.com", "password": in}),
				r.do(c, "POST", "/v1/keys", map[string]string{"name": in}),
				r.do(c, "DELETE", "/v1/keys/"+urlEscape(in), nil),
				r.do(c, "DELETE", "/v1/signins/"+urlEscape(in), nil),
				r.do(c, "POST", "/v1/device/approve", map[string]string{"user_code": in, "action": "approve"}),
				r.do(nil, "POST", "/v1/webhooks/stripe", []byte(in), "Stripe-Signature", header(in)),
				r.do(nil, "POST", "/v1/webhooks/polar", []byte(in), "webhook-id", header(in), "webhook-signature", header(in)),
			} {
				if a.code >= 500 || a.code == 200 {
					t.Errorf("%q: %d %s", in, a.code, a.raw)
				}
			}
		}
		if a := r.do(c, "GET", "/v1/account", nil); a.code != 200 || a.body["email"] != "ada@example.com" {
			t.Errorf("the account after the injections: %d %s", a.code, a.raw)
		}
		if list, err := st.ListAccounts(t.Context()); err != nil || len(list) != 1 {
			t.Errorf("accounts after the injections: %d %v", len(list), err)
		}
	})
}

// header drops what a header value cannot carry.
func header(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func urlEscape(s string) string {
	return strings.NewReplacer("%", "%25", "/", "%2F", "?", "%3F", "#", "%23", " ", "%20", "\r", "%0D", "\n", "%0A", "\x00", "%00").Replace(s)
}

func TestDatabaseDown(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testOutage(t, sqliteStore(t), nil, nil) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv("CODINGPLAN_TEST_POSTGRES") == "" {
			t.Skip("CODINGPLAN_TEST_POSTGRES not set (scripts/postgres.sh start 5495)")
		}
		// A private cluster, so that stopping it disturbs no other test.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
		runScript(t, "start", port)
		t.Cleanup(func() { exec.Command("../../../scripts/postgres.sh", "stop", port).Run() })
		st, err := store.OpenPostgres(t.Context(), "postgres://postgres@127.0.0.1:"+port+"/postgres?sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		testOutage(t, st, func() { runScript(t, "halt", port) }, func() { runScript(t, "start", port) })
	})
}

// testOutage takes the database down (by default the testStore's gate), checks the clear 503s,
// brings it back and checks that the same server recovers.
func testOutage(t *testing.T, st full, down, up func()) {
	r := newRig(t, st, nil)
	c := r.client()
	r.signIn(c)
	if a := r.do(nil, "GET", "/readyz", nil); a.code != 200 {
		t.Fatalf("readyz: %d", a.code)
	}
	if down == nil {
		down, up = func() { r.ts.down.Store(true) }, func() { r.ts.down.Store(false) }
	}
	down()
	for _, a := range []answer{
		r.do(nil, "GET", "/readyz", nil),
		r.do(c, "GET", "/v1/account", nil),
		r.do(nil, "POST", "/v1/session", map[string]string{"email": "ada@example.com", "password": testPassword}),
	} {
		if a.code != 503 || a.h.Get("Retry-After") == "" {
			t.Errorf("while the database is down: %d %s, want 503 with Retry-After", a.code, a.raw)
		}
	}
	body := testdata(t, "stripe_checkout_session_completed.json")
	if a := r.do(nil, "POST", "/v1/webhooks/stripe", body, "Stripe-Signature", stripeSig(testNow, body, stripeSecret)); a.code != 503 {
		t.Errorf("webhook while the database is down: %d %s", a.code, a.raw)
	}
	up()
	deadline := time.Now().Add(30 * time.Second)
	for r.do(nil, "GET", "/readyz", nil).code != 200 {
		if time.Now().After(deadline) {
			t.Fatal("not ready 30s after the database came back")
		}
		time.Sleep(100 * time.Millisecond) // polling a real server's recovery; no event to wait on
	}
	if a := r.do(c, "GET", "/v1/account", nil); a.code != 200 {
		t.Errorf("account after recovery: %d %s", a.code, a.raw)
	}
	// The webhook refused during the outage is applied when the provider delivers it again.
	if a := r.do(nil, "POST", "/v1/webhooks/stripe", body, "Stripe-Signature", stripeSig(testNow, body, stripeSecret)); a.code != 200 || a.body["status"] != "applied" {
		t.Errorf("webhook after recovery: %d %s", a.code, a.raw)
	}
}

func runScript(t *testing.T, cmd, port string) {
	t.Helper()
	out, err := exec.Command("../../../scripts/postgres.sh", cmd, port).CombinedOutput()
	if err != nil {
		t.Fatalf("postgres.sh %s %s: %v\n%s", cmd, port, err, out)
	}
}

func TestHealthz(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		r := newRig(t, st, nil)
		r.ts.down.Store(true)
		if a := r.do(nil, "GET", "/healthz", nil); a.code != 200 {
			t.Errorf("healthz with the database down: %d", a.code)
		}
	})
}
