package accounts

import (
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a set of token buckets, one per key (a client address, an account id, an email's
// hash), in memory. Buckets idle long enough to be full again are forgotten.
type limiter struct {
	every rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

// maxBuckets caps the keys one limiter remembers.
const maxBuckets = 100_000

// newLimiter returns a limiter of perMinute with burst, or nil (no limit) when perMinute is 0.
func newLimiter(perMinute, burst int, now func() time.Time) *limiter {
	if perMinute <= 0 {
		return nil
	}
	return &limiter{every: rate.Limit(float64(perMinute) / 60), burst: max(burst, 1), now: now,
		buckets: map[string]*rate.Limiter{}}
}

// allow takes a token from key's bucket; when there is none it returns false and how long
// until there is.
func (l *limiter) allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if full := time.Duration(float64(l.burst) / float64(l.every) * float64(time.Second)); now.Sub(l.swept) > full && len(l.buckets) > 0 {
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil && len(l.buckets) >= maxBuckets {
		// Keys chosen by a client (emails) could grow the map without end: past the cap,
		// start afresh rather than run out of memory. The per-address buckets still hold.
		clear(l.buckets)
	}
	if b == nil {
		b = rate.NewLimiter(l.every, l.burst)
		l.buckets[key] = b
	}
	res := b.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// limits are the server's limiters (nil ones are off).
type limits struct {
	sessionAddr, sessionEmail *limiter
	token, device             *limiter
	tokenAccount              *limiter
	deviceAccount             *limiter
	webhook                   *limiter
	account                   *limiter
}

func newLimits(r Rates, now func() time.Time) limits {
	return limits{
		sessionAddr:   newLimiter(r.SessionPerMinute, r.SessionBurst, now),
		sessionEmail:  newLimiter(r.SessionPerMinute, r.SessionBurst, now),
		token:         newLimiter(r.TokenPerMinute, r.TokenBurst, now),
		tokenAccount:  newLimiter(r.TokenPerMinute, r.TokenBurst, now),
		device:        newLimiter(r.DevicePerMinute, r.DeviceBurst, now),
		deviceAccount: newLimiter(r.DevicePerMinute, r.DeviceBurst, now),
		webhook:       newLimiter(r.WebhookPerMinute, r.WebhookBurst, now),
		account:       newLimiter(r.AccountPerMinute, r.AccountBurst, now),
	}
}

func byAddr(r *http.Request) string { return clientAddr(r) }

// limit answers 429 with Retry-After when key(r)'s bucket is empty.
func (s *Server) limit(l *limiter, key func(*http.Request) string, h http.Handler) http.Handler {
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
func (s *Server) allow(w http.ResponseWriter, l *limiter, key string) bool {
	ok, wait := l.allow(key)
	if !ok {
		retryAfter(w, wait)
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests; retry later")
	}
	return ok
}
