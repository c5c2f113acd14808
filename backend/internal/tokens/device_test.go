package tokens

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

var shownCode = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// TestDeviceFlow is the whole sign-in of an editor: device code, pending, slow_down, approval,
// tokens, refresh, and a replayed refresh token revoking the sign-in.
func TestDeviceFlow(t *testing.T) {
	eachStore(t, func(t *testing.T, st testStore) {
		ctx := t.Context()
		clk := newClock()
		iss := newIssuer(t, st, clk)
		h := iss.Handler()
		v := verifier(t, h, clk, 0)
		acct := newAccount(t, st, "ada@example.com", "pro")

		dc := post(t, h, "/v1/device/code", url.Values{"client_id": {"vscode"}})
		if dc.status != http.StatusOK {
			t.Fatalf("device code: %d %v", dc.status, dc.body)
		}
		code, user := dc.str("device_code"), dc.str("user_code")
		if !shownCode.MatchString(user) {
			t.Errorf("user_code %q, want XXXX-XXXX from the alphabet", user)
		}
		if got, want := dc.str("verification_uri"), verifyURI; got != want {
			t.Errorf("verification_uri %q, want %q", got, want)
		}
		if got, want := dc.str("verification_uri_complete"), verifyURI+"?user_code="+user; got != want {
			t.Errorf("verification_uri_complete %q, want %q", got, want)
		}
		if dc.num("expires_in") != 900 || dc.num("interval") != 5 {
			t.Errorf("expires_in %d interval %d, want 900 and 5", dc.num("expires_in"), dc.num("interval"))
		}

		poll := func() answer { return post(t, h, "/v1/token", deviceForm(code, "vscode")) }
		wantError(t, "first poll", poll(), 400, "authorization_pending")
		wantError(t, "poll at once", poll(), 400, "slow_down") // interval now 10 s
		clk.Add(5 * time.Second)
		wantError(t, "poll after 5 s", poll(), 400, "slow_down") // interval now 15 s
		clk.Add(15 * time.Second)
		wantError(t, "poll after 15 s", poll(), 400, "authorization_pending")

		// The approval page: the code as a user types it.
		typed := strings.ToLower(strings.ReplaceAll(user, "-", " "))
		d, err := iss.Device(ctx, typed)
		if err != nil || d.AccountID != "" || d.Denied || d.Client != "vscode" {
			t.Fatalf("Device(%q) = %+v, %v; want pending for vscode", typed, d, err)
		}
		if got := iss.DeviceState(d); got != DevicePending {
			t.Errorf("DeviceState %q, want pending", got)
		}
		if err := iss.Approve(ctx, typed, acct.ID); err != nil {
			t.Fatalf("Approve: %v", err)
		}
		if d, _ := iss.Device(ctx, user); iss.DeviceState(d) != DeviceApproved {
			t.Errorf("DeviceState after approval %q, want approved", iss.DeviceState(d))
		}
		if err := iss.Approve(ctx, user, acct.ID); err != nil {
			t.Fatalf("Approve again: %v", err)
		}
		clk.Add(15 * time.Second)
		got := poll()
		wantTokens(t, "approved poll", got, true)
		if got.num("expires_in") != 900 {
			t.Errorf("expires_in %d, want 900", got.num("expires_in"))
		}
		claims, err := v.Verify(ctx, got.str("access_token"))
		if err != nil {
			t.Fatalf("backend verifier refuses the access token: %v", err)
		}
		if claims.Subject != acct.ID || claims.Plan != "pro" || claims.ID == "" || claims.IssuedAt == nil {
			t.Errorf("claims %+v, want sub %s plan pro with jti and iat", claims, acct.ID)
		}
		fams, err := st.ListFamilies(ctx, acct.ID)
		if err != nil || len(fams) != 1 || fams[0].Client != "vscode" {
			t.Fatalf("families %+v, %v; want one for vscode", fams, err)
		}
		clk.Add(15 * time.Second)
		wantError(t, "poll after the tokens", poll(), 400, "invalid_grant")

		r1 := got.str("refresh_token")
		clk.Add(10 * time.Minute)
		got = post(t, h, "/v1/token", refreshForm(r1))
		wantTokens(t, "refresh", got, true)
		r2 := got.str("refresh_token")
		if r2 == r1 {
			t.Fatal("refresh token not rotated")
		}
		if _, err := v.Verify(ctx, got.str("access_token")); err != nil {
			t.Fatalf("refreshed access token: %v", err)
		}

		wantError(t, "replayed refresh token", post(t, h, "/v1/token", refreshForm(r1)), 400, "invalid_grant")
		wantError(t, "refresh after the replay", post(t, h, "/v1/token", refreshForm(r2)), 400, "invalid_grant")
		fams, _ = st.ListFamilies(ctx, acct.ID)
		if len(fams) != 1 || fams[0].Revoked.IsZero() {
			t.Errorf("families %+v, want the one revoked", fams)
		}
	})
}

func TestDeviceDecisions(t *testing.T) {
	eachStore(t, func(t *testing.T, st testStore) {
		ctx := t.Context()
		clk := newClock()
		iss := newIssuer(t, st, clk)
		h := iss.Handler()
		ada := newAccount(t, st, "ada@example.com", "pro")
		bob := newAccount(t, st, "bob@example.com", "pro")
		eve := newAccount(t, st, "eve@example.com", "pro")
		eve.Status = store.StatusSuspended
		if err := st.UpdateAccount(ctx, eve); err != nil {
			t.Fatal(err)
		}
		start := func(client string) (code, user string) {
			a := post(t, h, "/v1/device/code", url.Values{"client_id": {client}})
			if a.status != 200 {
				t.Fatalf("device code: %d %v", a.status, a.body)
			}
			return a.str("device_code"), a.str("user_code")
		}

		// Denied.
		code, user := start("neovim")
		if err := iss.Deny(ctx, user); err != nil {
			t.Fatalf("Deny: %v", err)
		}
		if d, _ := iss.Device(ctx, user); iss.DeviceState(d) != DeviceDenied {
			t.Errorf("DeviceState after Deny %q, want denied", iss.DeviceState(d))
		}
		wantError(t, "denied", post(t, h, "/v1/token", deviceForm(code, "neovim")), 400, "access_denied")
		if err := iss.Approve(ctx, user, ada.ID); !errors.Is(err, ErrDecided) {
			t.Errorf("Approve after Deny: %v, want ErrDecided", err)
		}

		// Approved for one account, then for another; wrong client; suspended approver.
		code, user = start("neovim")
		if err := iss.Approve(ctx, user, eve.ID); !errors.Is(err, ErrNotEntitled) {
			t.Errorf("Approve by a suspended account: %v, want ErrNotEntitled", err)
		}
		if err := iss.Approve(ctx, user, "no-such-account"); !errors.Is(err, ErrNotEntitled) {
			t.Errorf("Approve by an unknown account: %v, want ErrNotEntitled", err)
		}
		if err := iss.Approve(ctx, user, ada.ID); err != nil {
			t.Fatal(err)
		}
		if err := iss.Approve(ctx, user, bob.ID); !errors.Is(err, ErrDecided) {
			t.Errorf("Approve for another account: %v, want ErrDecided", err)
		}
		if err := iss.Deny(ctx, user); !errors.Is(err, ErrDecided) {
			t.Errorf("Deny after Approve: %v, want ErrDecided", err)
		}
		wantError(t, "another client", post(t, h, "/v1/token", deviceForm(code, "vscode")), 400, "invalid_grant")
		// The account is suspended between approval and poll.
		ada.Status = store.StatusSuspended
		if err := st.UpdateAccount(ctx, ada); err != nil {
			t.Fatal(err)
		}
		clk.Add(5 * time.Second)
		wantError(t, "suspended after approval", post(t, h, "/v1/token", deviceForm(code, "neovim")), 400, "access_denied")

		// Expired.
		code, user = start("vscode")
		clk.Add(DefaultDeviceTTL)
		if d, _ := iss.Device(ctx, user); iss.DeviceState(d) != DeviceExpired {
			t.Errorf("DeviceState after expiry %q, want expired", iss.DeviceState(d))
		}
		wantError(t, "expired", post(t, h, "/v1/token", deviceForm(code, "vscode")), 400, "expired_token")
		if err := iss.Approve(ctx, user, bob.ID); !errors.Is(err, ErrExpired) {
			t.Errorf("Approve after expiry: %v, want ErrExpired", err)
		}

		// Unknown and malformed codes.
		for _, c := range []string{"BCDF-GHJK", "", "AAAA-AAAA", "BCDF-GHJ", "bcdf-ghjk-l", "'; DROP TABLE device_codes; --"} {
			if err := iss.Approve(ctx, c, bob.ID); !errors.Is(err, ErrUnknownCode) {
				t.Errorf("Approve(%q): %v, want ErrUnknownCode", c, err)
			}
			if _, err := iss.Device(ctx, c); !errors.Is(err, ErrUnknownCode) {
				t.Errorf("Device(%q): %v, want ErrUnknownCode", c, err)
			}
		}
		wantError(t, "unknown device code", post(t, h, "/v1/token", deviceForm(random(32), "vscode")), 400, "invalid_grant")
	})
}

func TestNormalizeUserCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"BCDF-GHJK", "BCDFGHJK"},
		{"bcdf-ghjk", "BCDFGHJK"},
		{" bcdf ghjk ", "BCDFGHJK"},
		{"BCDFGHJK", "BCDFGHJK"},
		{"BC-DF-GH-JK", "BCDFGHJK"},
		{"BCDF-GHJ", ""},
		{"BCDF-GHJKL", ""},
		{"ACDF-GHJK", ""}, // a vowel
		{"0CDF-GHJK", ""},
		{"BCDF-GHJK\x00", ""},
		{"ßCDF-GHJK", ""},
		{strings.Repeat(" ", 100) + "BCDFGHJK", ""},
	}
	for _, tt := range tests {
		if got := NormalizeUserCode(tt.in); got != tt.want {
			t.Errorf("NormalizeUserCode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for range 1000 {
		c := newUserCode()
		if NormalizeUserCode(FormatUserCode(c)) != c || !shownCode.MatchString(FormatUserCode(c)) {
			t.Fatalf("user code %q does not survive formatting", c)
		}
	}
}
