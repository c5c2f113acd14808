package tokens

import (
	"context"
	"net/url"
	"testing"
)

// TestRevoke: POST /v1/revoke ends the refresh token's sign-in, tells OnRevoke once, and answers
// 200 for tokens it does not know (RFC 7009 §2.2).
func TestRevoke(t *testing.T) {
	eachStore(t, func(t *testing.T, st testStore) {
		ctx := t.Context()
		iss := newIssuer(t, st, newClock())
		type told struct{ account, sid string }
		var got []told
		iss.cfg.OnRevoke = func(_ context.Context, account, sid string) { got = append(got, told{account, sid}) }
		h := iss.Handler()
		acct := newAccount(t, st, "ada@example.com", "pro")
		resp, err := iss.newSignIn(ctx, acct, "neovim")
		if err != nil {
			t.Fatal(err)
		}
		revoke := func(form url.Values) answer { return post(t, h, "/v1/revoke", form) }

		for _, tt := range []struct {
			name   string
			form   url.Values
			status int
			code   string
		}{
			{"no token", url.Values{}, 400, "invalid_request"},
			{"access token hint", url.Values{"token": {"x"}, "token_type_hint": {"access_token"}}, 400, "unsupported_token_type"},
			{"bad client id", url.Values{"token": {"x"}, "client_id": {"a b"}}, 401, "invalid_client"},
		} {
			wantError(t, tt.name, revoke(tt.form), tt.status, tt.code)
		}
		for _, tok := range []string{"short", random(secretBytes)} {
			if a := revoke(url.Values{"token": {tok}}); a.status != 200 {
				t.Errorf("unknown token: %d %v, want 200", a.status, a.body)
			}
		}
		if len(got) != 0 {
			t.Fatalf("OnRevoke told %v for unknown tokens", got)
		}

		a := revoke(url.Values{"token": {resp.RefreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {"neovim"}})
		if a.status != 200 || a.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("revoke: %d %v %q, want 200 no-store", a.status, a.body, a.header.Get("Cache-Control"))
		}
		fams, _ := st.ListFamilies(ctx, acct.ID)
		if len(fams) != 1 || fams[0].Revoked.IsZero() {
			t.Errorf("families %+v, want the sign-in revoked", fams)
		}
		if want := []told{{acct.ID, fams[0].ID}}; len(got) != 1 || got[0] != want[0] {
			t.Errorf("OnRevoke told %v, want %v", got, want)
		}
		wantError(t, "refresh after revoke", post(t, h, "/v1/token", refreshForm(resp.RefreshToken)), 400, "invalid_grant")
		if a := revoke(url.Values{"token": {resp.RefreshToken}}); a.status != 200 || len(got) != 1 {
			t.Errorf("revoke again: %d, told %d times; want 200, once", a.status, len(got))
		}
	})
}
