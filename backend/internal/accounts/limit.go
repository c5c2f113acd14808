package accounts

import (
	"net/http"
	"time"

	"github.com/codingplan/codingplan/backend/internal/throttle"
)

// limits are the server's limiters (nil ones are off).
type limits struct {
	sessionAddr, sessionEmail *throttle.Limiter
	token, device             *throttle.Limiter
	tokenAccount              *throttle.Limiter
	deviceAccount             *throttle.Limiter
	webhook                   *throttle.Limiter
	account                   *throttle.Limiter
}

func newLimits(r Rates, now func() time.Time) limits {
	return limits{
		sessionAddr:   throttle.New(r.SessionPerMinute, r.SessionBurst, now),
		sessionEmail:  throttle.New(r.SessionPerMinute, r.SessionBurst, now),
		token:         throttle.New(r.TokenPerMinute, r.TokenBurst, now),
		tokenAccount:  throttle.New(r.TokenPerMinute, r.TokenBurst, now),
		device:        throttle.New(r.DevicePerMinute, r.DeviceBurst, now),
		deviceAccount: throttle.New(r.DevicePerMinute, r.DeviceBurst, now),
		webhook:       throttle.New(r.WebhookPerMinute, r.WebhookBurst, now),
		account:       throttle.New(r.AccountPerMinute, r.AccountBurst, now),
	}
}

func byAddr(r *http.Request) string { return clientAddr(r) }

// limit answers 429 with Retry-After when key(r)'s bucket is empty.
func (s *Server) limit(l *throttle.Limiter, key func(*http.Request) string, h http.Handler) http.Handler {
	if l == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.allow(w, l, key(r)) {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// allow takes a token for key, or answers 429 and returns false.
func (s *Server) allow(w http.ResponseWriter, l *throttle.Limiter, key string) bool {
	ok, wait := l.Allow(key)
	if !ok {
		throttle.RetryAfter(w, wait)
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests; retry later")
	}
	return ok
}
