package remote

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

// TestStatusReasons: each state that needs the user carries the reason editors act on (and
// tell the user about once), and the retry time where there is one.
func TestStatusReasons(t *testing.T) {
	refuse := func(status int, body string) string {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(hs.Close)
		return "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/ws"
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := "ws" + strings.TrimPrefix(dead.URL, "http") + "/v1/ws"
	dead.Close() // nothing listens there any more

	tests := []struct {
		name, url, token string
		state, reason    string
		retry            bool
		message          string
	}{
		{"no token", deadURL, "", lspx.StateSignedOut, lspx.ReasonSignedOut, false, "sign in"},
		{"unreachable", deadURL, "tok", lspx.StateError, lspx.ReasonUnreachable, true, "retrying in"},
		{"token refused", refuse(401, `{"code":"unauthorized","message":"bad signature"}`), "tok",
			lspx.StateSignedOut, lspx.ReasonTokenRejected, false, "bad signature"},
		{"token expired", refuse(401, `{"code":"token_expired","message":"the token has expired"}`), "tok",
			lspx.StateError, lspx.ReasonTokenExpired, false, "token expired"},
		{"subscription inactive", refuse(403, `{"code":"quota_exceeded","message":"the plan \"old\" is not offered"}`), "tok",
			lspx.StateError, lspx.ReasonSubscriptionInactive, false, "subscription inactive"},
		{"no URL", "", "tok", lspx.StateError, lspx.ReasonNoBackendURL, false, "backendUrl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFakeBackend(t, "tok")
			h := start(t, b, tt.token, func(c *Config) {
				c.URL = tt.url
				c.MinBackoff, c.MaxBackoff = time.Minute, time.Minute // one failed attempt, then a long wait
			})
			s := h.waitStatus(t, tt.state)
			if s.Reason != tt.reason || (s.RetryAfterMS > 0) != tt.retry || !strings.Contains(s.Message, tt.message) {
				t.Errorf("status = %+v, want reason %q, a retry time %v, a message with %q", s, tt.reason, tt.retry, tt.message)
			}
		})
	}
}

// TestRetryNow: Retry cuts the backoff short: the next attempt comes at once, not after it.
func TestRetryNow(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := "ws" + strings.TrimPrefix(dead.URL, "http") + "/v1/ws"
	dead.Close()
	h := start(t, newFakeBackend(t, "tok"), "tok", func(c *Config) {
		c.URL = url
		c.MinBackoff, c.MaxBackoff = time.Hour, time.Hour
	})
	first := h.waitStatus(t, lspx.StateError)
	if d := recv(t, h.pauses, "the backoff"); d < 30*time.Minute {
		t.Fatalf("backoff = %v, want about an hour", d)
	}
	h.c.Retry()
	if d := recv(t, h.pauses, "the backoff after the retry"); d < 30*time.Minute {
		t.Fatalf("backoff = %v", d)
	}
	if first.Reason != lspx.ReasonUnreachable {
		t.Errorf("reason = %q", first.Reason)
	}
}
