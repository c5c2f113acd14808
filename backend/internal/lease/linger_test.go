package lease

import (
	"context"
	"testing"
	"time"
)

// TestLinger: a released lease stays counted in Valkey for Linger, a new stream of the same
// user on the same node takes it over (same id, no new slot), and it leaves Valkey once it
// lingers unused; ReleaseNow does not linger; Close ends a lingering lease at once.
func TestLinger(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			cfg := Config{Prefix: testPrefix(t), MaxWait: -1, Linger: 300 * time.Millisecond}
			p := New(tg.client, cfg, nil) // closed by the test itself
			l := mustAcquire(t, p, "g", 1)
			id := l.id
			l.Release()
			if got := p.parkedIDs("g"); len(got) != 1 || got[0] != id {
				t.Fatalf("lingering leases = %v, want [%s]", got, id)
			}
			if got := zcard(t, tg.client, cfg.Prefix, "g", suffixLeases); got != 1 {
				t.Errorf("leases in Valkey while it lingers = %d, want 1", got)
			}
			again := mustAcquire(t, p, "g", 1)
			if again.id != id {
				t.Errorf("next stream's lease id %s, want the lingering %s", again.id, id)
			}
			if got := p.parkedIDs("g"); len(got) != 0 {
				t.Errorf("lingering leases after the take = %v, want none", got)
			}
			again.Release()
			eventually(t, 5*time.Second, "the unused lease to leave Valkey", func() bool {
				return zcard(t, tg.client, cfg.Prefix, "g", suffixLeases) == 0
			})

			now := mustAcquire(t, p, "g", 1)
			now.ReleaseNow()
			if got, ids := zcard(t, tg.client, cfg.Prefix, "g", suffixLeases), p.parkedIDs("g"); got != 0 || len(ids) != 0 {
				t.Errorf("after ReleaseNow: %d leases in Valkey, lingering %v; want none", got, ids)
			}

			last := mustAcquire(t, p, "g", 1)
			last.Release()
			if got := zcard(t, tg.client, cfg.Prefix, "g", suffixLeases); got != 1 {
				t.Fatalf("leases in Valkey while it lingers = %d, want 1", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := zcard(t, tg.client, cfg.Prefix, "g", suffixLeases); got != 0 {
				t.Errorf("leases in Valkey after Close = %d, want 0", got)
			}
		})
	}
}

// TestLingerYieldsToWaiters: a lease does not linger while a request of the same user waits
// for a slot on another node; that request gets the slot as soon as the stream ends.
func TestLingerYieldsToWaiters(t *testing.T) {
	c := single(t)
	cfg := Config{Prefix: testPrefix(t), MaxWait: 5 * time.Second, Linger: 10 * time.Second}
	p := newPool(t, c, cfg)
	other := newPool(t, c, cfg)
	l := mustAcquire(t, p, "y", 1)
	queued := make(chan int, 1)
	got := make(chan *Lease, 1)
	go func() {
		w, err := other.Acquire(context.Background(), "y", 1, func(pos int) { queued <- pos })
		if err != nil {
			t.Errorf("waiting acquire: %v", err)
		}
		got <- w
	}()
	recv(t, queued, 5*time.Second, "the other node's request to queue")
	released := time.Now()
	l.Release()
	if ids := p.parkedIDs("y"); len(ids) != 0 {
		t.Errorf("a lease lingers while a request waits: %v", ids)
	}
	w := recv(t, got, 5*time.Second, "the waiter to get the slot")
	if waited := time.Since(released); waited > time.Second {
		t.Errorf("the waiter got the slot %v after the release, want at once (well under the 10s linger)", waited)
	}
	w.Release()
}
