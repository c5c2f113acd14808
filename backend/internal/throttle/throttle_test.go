package throttle

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/codingplan/codingplan/shared/clock/clocktest"
)

func TestLimiter(t *testing.T) {
	ck := clocktest.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	l := New(60, 2, ck.Now) // one a second, two at once
	for i, want := range []bool{true, true, false} {
		if ok, wait := l.Allow("a"); ok != want || (!ok && (wait <= 0 || wait > time.Second)) {
			t.Errorf("take %d: %v %v", i, ok, wait)
		}
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("another key shares the bucket")
	}
	ck.Add(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("no refill after a second")
	}
	ck.Add(time.Minute)
	l.Allow("c") // sweeps the full buckets
	if n := l.Keys(); n != 1 {
		t.Errorf("%d buckets after the sweep, want 1", n)
	}
	if New(0, 5, ck.Now) != nil {
		t.Error("a rate of 0 is a limit")
	}
	var off *Limiter
	if ok, _ := off.Allow("x"); !ok {
		t.Error("no limiter refused")
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {1001 * time.Millisecond, "2"}, {30 * time.Second, "30"}} {
		w := httptest.NewRecorder()
		RetryAfter(w, tc.d)
		if got := w.Header().Get("Retry-After"); got != tc.want {
			t.Errorf("RetryAfter(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
