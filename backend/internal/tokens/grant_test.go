package tokens

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// sidOf reads the sid claim of a token without verifying it.
func sidOf(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	json.Unmarshal(data, &c)
	return c.SID
}

func TestAPIKeyGrant(t *testing.T) {
	eachStore(t, func(t *testing.T, st testStore) {
		ctx := t.Context()
		clk := newClock()
		iss := newIssuer(t, st, clk)
		h := iss.Handler()
		v := verifier(t, h, clk, 0)
		acct := newAccount(t, st, "ci@example.com", "team")

		key, k, err := iss.NewAPIKey(ctx, acct.ID, "ci runner")
		if err != nil {
			t.Fatalf("NewAPIKey: %v", err)
		}
		if !strings.HasPrefix(key, "cpk_") || len(key) != apiKeyLen || !strings.HasPrefix(key, k.Prefix) || len(k.Prefix) != 12 {
			t.Errorf("key %q prefix %q: want cpk_ and 43 characters, prefix its first 12", key, k.Prefix)
		}
		if _, _, err := iss.NewAPIKey(ctx, "no-such-account", "x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("NewAPIKey for no account: %v, want ErrNotFound", err)
		}
		if _, _, err := iss.NewAPIKey(ctx, acct.ID, "bad\nname"); err == nil {
			t.Error("NewAPIKey accepted a name with a newline")
		}

		clk.Add(time.Minute)
		got := post(t, h, "/v1/token", url.Values{"grant_type": {GrantAPIKey}, "api_key": {key}})
		wantTokens(t, "api key", got, false)
		c, err := v.Verify(ctx, got.str("access_token"))
		if err != nil || c.Subject != acct.ID || c.Plan != "team" {
			t.Fatalf("Verify: %+v, %v", c, err)
		}
		if sid := sidOf(t, got.str("access_token")); sid != k.ID {
			t.Errorf("sid %q, want the key's id %q", sid, k.ID)
		}
		keys, _ := st.ListAPIKeys(ctx, acct.ID)
		if len(keys) != 1 || !keys[0].LastUsed.Equal(clk.Now()) {
			t.Errorf("keys %+v, want last use %v", keys, clk.Now())
		}

		// Unknown, malformed and revoked keys all get the same answer.
		other := "cpk_" + random(32)
		if err := st.RevokeAPIKey(ctx, acct.ID, k.ID, clk.Now()); err != nil {
			t.Fatal(err)
		}
		var bodies []string
		for _, bad := range []string{key, other, "cpk_short", strings.ToUpper(key), "sk_" + key[3:]} {
			a := post(t, h, "/v1/token", url.Values{"grant_type": {GrantAPIKey}, "api_key": {bad}})
			wantError(t, "bad key "+bad, a, 400, "invalid_grant")
			bodies = append(bodies, a.str("error_description"))
		}
		for _, b := range bodies[1:] {
			if b != bodies[0] {
				t.Errorf("error descriptions differ: %q", bodies)
			}
		}
	})
}

func TestNotEntitled(t *testing.T) {
	eachStore(t, func(t *testing.T, st testStore) {
		ctx := t.Context()
		clk := newClock()
		iss := newIssuer(t, st, clk)
		h := iss.Handler()
		acct := newAccount(t, st, "ada@example.com", "pro")

		for _, tt := range []struct {
			status, plan string
			ok           bool
		}{
			{store.StatusActive, "pro", true},
			{store.StatusPastDue, "pro", true},
			{store.StatusCanceled, "pro", false},
			{store.StatusSuspended, "pro", false},
			{store.StatusActive, "", false},
		} {
			a := acct
			a.Status, a.Plan = tt.status, tt.plan
			_, _, err := iss.Mint(ctx, a, "s")
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrNotEntitled)) {
				t.Errorf("Mint(%s, %q): %v, want ok %v", tt.status, tt.plan, err, tt.ok)
			}
		}

		// A suspended account's refresh ends its sign-in; its API keys stop giving tokens.
		resp, err := iss.newSignIn(ctx, acct, "vscode")
		if err != nil {
			t.Fatal(err)
		}
		key, _, err := iss.NewAPIKey(ctx, acct.ID, "ci")
		if err != nil {
			t.Fatal(err)
		}
		acct.Status = store.StatusSuspended
		if err := st.UpdateAccount(ctx, acct); err != nil {
			t.Fatal(err)
		}
		wantError(t, "refresh when suspended", post(t, h, "/v1/token", refreshForm(resp.RefreshToken)), 400, "invalid_grant")
		wantError(t, "api key when suspended", post(t, h, "/v1/token", url.Values{"grant_type": {GrantAPIKey}, "api_key": {key}}), 400, "invalid_grant")
		fams, _ := st.ListFamilies(ctx, acct.ID)
		if len(fams) != 1 || fams[0].Revoked.IsZero() {
			t.Errorf("families %+v, want the sign-in revoked", fams)
		}
	})
}

// TestConcurrentRefresh: of many clients presenting one refresh token at once, exactly one gets
// a new pair.
func TestConcurrentRefresh(t *testing.T) {
	eachStore(t, func(t *testing.T, st testStore) {
		iss := newIssuer(t, st, nil)
		h := iss.Handler()
		acct := newAccount(t, st, "ada@example.com", "pro")
		resp, err := iss.newSignIn(t.Context(), acct, "vscode")
		if err != nil {
			t.Fatal(err)
		}
		const n = 16
		answers := make([]answer, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for j := range n {
			wg.Go(func() {
				<-start
				answers[j] = post(t, h, "/v1/token", refreshForm(resp.RefreshToken))
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for _, a := range answers {
			switch {
			case a.status == 200 && a.str("refresh_token") != "":
				won++
			case a.status == 400 && a.str("error") == "invalid_grant":
			default:
				t.Errorf("answer %d %v, want tokens or invalid_grant", a.status, a.body)
			}
		}
		if won != 1 {
			t.Errorf("%d clients got a new pair, want exactly 1", won)
		}
	})
}

func TestAccountLimit(t *testing.T) {
	st := openSQLite(t)
	var asked []string
	limit := time.Duration(0)
	iss, err := New(st, Config{VerificationURI: verifyURI, AccountLimit: func(_ context.Context, id string) time.Duration {
		asked = append(asked, id)
		return limit
	}}, discard())
	if err != nil {
		t.Fatal(err)
	}
	h := iss.Handler()
	acct := newAccount(t, st, "ci@example.com", "team")
	key, _, err := iss.NewAPIKey(t.Context(), acct.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {GrantAPIKey}, "api_key": {key}}
	wantTokens(t, "under the limit", post(t, h, "/v1/token", form), false)
	limit = 1500 * time.Millisecond
	a := post(t, h, "/v1/token", form)
	wantError(t, "over the limit", a, 429, "rate_limited")
	if got := a.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want 2", got)
	}
	// An unknown key is refused before the account is known: the limit is not asked.
	wantError(t, "unknown key", post(t, h, "/v1/token", url.Values{"grant_type": {GrantAPIKey}, "api_key": {"cpk_" + random(32)}}), 400, "invalid_grant")
	if len(asked) != 2 || asked[0] != acct.ID || asked[1] != acct.ID {
		t.Errorf("AccountLimit asked for %v, want the account twice", asked)
	}
}

// TestInjection sends SQL in every field that reaches the store; it is data, nothing more.
func TestInjection(t *testing.T) {
	eachStore(t, func(t *testing.T, st testStore) {
		ctx := t.Context()
		iss := newIssuer(t, st, newClock())
		h := iss.Handler()
		acct := newAccount(t, st, "ada@example.com", "pro")
		const sql = `x');DROP_TABLE_accounts;--'"`
		a := post(t, h, "/v1/device/code", url.Values{"client_id": {sql}})
		if a.status != 200 {
			t.Fatalf("device code for client %q: %d %v", sql, a.status, a.body)
		}
		d, err := iss.Device(ctx, a.str("user_code"))
		if err != nil || d.Client != sql {
			t.Fatalf("Device: %+v, %v; want client %q", d, err, sql)
		}
		name := `'; DELETE FROM api_keys; --`
		if _, k, err := iss.NewAPIKey(ctx, acct.ID, name); err != nil || k.Name != name {
			t.Fatalf("NewAPIKey(%q): %+v, %v", name, k, err)
		}
		if err := iss.Approve(ctx, a.str("user_code"), `' OR '1'='1`); !errors.Is(err, ErrNotEntitled) {
			t.Errorf("Approve for an injected account id: %v", err)
		}
		for _, v := range []string{"' OR 1=1 --", `"; DROP TABLE refresh_tokens; --`} {
			pad := (v + strings.Repeat("x", 43))[:43]
			wantError(t, "refresh "+v, post(t, h, "/v1/token", refreshForm(pad)), 400, "invalid_grant")
			wantError(t, "device "+v, post(t, h, "/v1/token", deviceForm(pad, "vscode")), 400, "invalid_grant")
			wantError(t, "api key "+v, post(t, h, "/v1/token", url.Values{"grant_type": {GrantAPIKey}, "api_key": {"cpk_" + pad}}), 400, "invalid_grant")
		}
		if keys, err := st.ListAPIKeys(ctx, acct.ID); err != nil || len(keys) != 1 {
			t.Errorf("keys after the injections: %d, %v", len(keys), err)
		}
		if _, err := st.Account(ctx, acct.ID); err != nil {
			t.Errorf("account after the injections: %v", err)
		}
	})
}
