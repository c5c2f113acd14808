// Package throttle is a set of token buckets, one per key (a client address, an account id, an
// email's hash), in memory, on golang.org/x/time/rate. The account service limits its pages
// and API with it, and the websocket gateway its upgrades per client address.
package throttle

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a set of token buckets, one per key. Buckets idle long enough to be full again
// are forgotten. A nil *Limiter allows everything.
type Limiter struct {
	every rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

// maxBuckets caps the keys one Limiter remembers.
const maxBuckets = 100_000

// New returns a Limiter of perMinute with burst, or nil (no limit) when perMinute is 0.
func New(perMinute, burst int, now func() time.Time) *Limiter {
	if perMinute <= 0 {
		return nil
	}
	return &Limiter{every: rate.Limit(float64(perMinute) / 60), burst: max(burst, 1), now: now,
		buckets: map[string]*rate.Limiter{}}
}

// Allow takes a token from key's bucket; when there is none it returns false and how long
// until there is.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
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

// Keys is how many keys l remembers.
func (l *Limiter) Keys() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// RetryAfter sets the Retry-After header to d in whole seconds, rounded up, at least 1.
func RetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(Seconds(d)))
}

// Seconds is d in whole seconds, rounded up, at least 1: a Retry-After value.
func Seconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
