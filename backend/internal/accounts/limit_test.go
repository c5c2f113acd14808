package accounts

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	ck := &clock{t: testNow}
	l := newLimiter(60, 2, ck.Now) // one a second, two at once
	for i, want := range []bool{true, true, false} {
		if ok, wait := l.allow("a"); ok != want || (!ok && (wait <= 0 || wait > time.Second)) {
			t.Errorf("take %d: %v %v", i, ok, wait)
		}
	}
	if ok, _ := l.allow("b"); !ok {
		t.Error("another key shares the bucket")
	}
	ck.Add(time.Second)
	if ok, _ := l.allow("a"); !ok {
		t.Error("no refill after a second")
	}
	ck.Add(time.Minute)
	l.allow("c") // sweeps the full buckets
	if n := len(l.buckets); n != 1 {
		t.Errorf("%d buckets after the sweep, want 1", n)
	}
	if newLimiter(0, 5, ck.Now) != nil {
		t.Error("a rate of 0 is a limit")
	}
	var off *limiter
	if ok, _ := off.allow("x"); !ok {
		t.Error("no limiter refused")
	}
}
