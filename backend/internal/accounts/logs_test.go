package accounts

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer for a logger used by several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestLogsHoldNoSecrets: at debug level, the logs of sign-ins, keys and webhooks hold ids only.
func TestLogsHoldNoSecrets(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		var buf syncBuffer
		r := newRig(t, st, func(o *Options) {
			o.Log = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		r.do(nil, "POST", "/v1/session", map[string]string{"email": "ada@example.com", "password": "wrong password"})
		c := r.client()
		signin := r.do(c, "POST", "/v1/session", map[string]string{"email": "ada@example.com", "password": testPassword})
		key := r.do(c, "POST", "/v1/keys", map[string]string{"name": "laptop"}).body["key"].(string)
		body := testdata(t, "stripe_checkout_session_completed.json")
		r.do(nil, "POST", "/v1/webhooks/stripe", body, "Stripe-Signature", stripeSig(testNow, body, stripeSecret))
		logs := buf.String()
		cookie := signin.h.Get("Set-Cookie")
		cookie = cookie[strings.Index(cookie, "=")+1 : strings.Index(cookie, ";")]
		for _, secret := range []string{"ada@example.com", "wrong password", testPassword, key, cookie, stripeSecret} {
			if strings.Contains(logs, secret) {
				t.Errorf("the logs hold %q:\n%s", secret, logs)
			}
		}
		if !strings.Contains(logs, "acct_42") {
			t.Errorf("the logs name no account id:\n%s", logs)
		}
	})
}
