package remote

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

// TestUpgradeRateLimited: a 429 at the upgrade makes the next dial wait at least its
// Retry-After, however short the backoff, and the status tells the user why, with the
// backend's message.
func TestUpgradeRateLimited(t *testing.T) {
	const msg = "this account has 64 connections open (the limit); close editors you no longer use"
	for _, tc := range []struct {
		name       string
		retryAfter string
		least      time.Duration
	}{
		{"seconds", "120", 120 * time.Second},
		{"none", "", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dials atomic.Int32
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				dials.Add(1)
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write([]byte(`{"code":"rate_limited","message":"` + msg + `"}`))
			}))
			t.Cleanup(hs.Close)
			h := start(t, newFakeBackend(t, "tok"), "tok", func(c *Config) {
				c.URL = "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/ws"
				c.MinBackoff, c.MaxBackoff = time.Millisecond, time.Millisecond
			})
			d := recv(t, h.pauses, "the wait after the 429")
			if d < tc.least || d > tc.least+tc.least/10 {
				t.Errorf("waited %v, want at least %v (and at most a tenth more)", d, tc.least)
			}
			s := h.waitStatus(t, lspx.StateRateLimited)
			if s.Reason != lspx.ReasonRateLimited || !strings.Contains(s.Message, msg) || s.RetryAfterMS < tc.least.Milliseconds()-1000 {
				t.Errorf("status = %+v, want reason %q, the backend's message and the wait", s, lspx.ReasonRateLimited)
			}
			if n := dials.Load(); n != 1 {
				t.Errorf("%d dials, want 1 before Retry-After", n)
			}
		})
	}
}
