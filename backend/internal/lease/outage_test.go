package lease

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// TestValkeyOutage: with Valkey hung and then dead, the Pool serves under the node-local fallback
// limit and says so; when Valkey is back it returns to it without leaking a slot.
func TestValkeyOutage(t *testing.T) {
	srv := startServer(t)
	link := startProxy(t, srv.addr())
	c := dial(t, link.addr)       // the Pool's view, through a link the test can cut
	direct := dial(t, srv.addr()) // the test's own view
	obs := &counter{}
	cfg := Config{
		Prefix:        testPrefix(t),
		MaxWait:       100 * time.Millisecond,
		FallbackLimit: 1,
		OpTimeout:     200 * time.Millisecond,
		ProbeInterval: 20 * time.Millisecond,
		Observer:      obs,
	}
	p := newPool(t, c, cfg)
	const limit = 3

	// 1. Valkey hangs (SIGSTOP) while a lease ends: the release cannot reach it.
	l := mustAcquire(t, p, "u", limit)
	srv.signal(syscall.SIGSTOP)
	l.Release()
	if err := p.Ready(); !errors.Is(err, ErrDegraded) {
		t.Fatalf("ready while Valkey hangs: %v, want ErrDegraded", err)
	}
	if obs.valkeyErrors.Load() == 0 {
		t.Error("no Valkey error observed")
	}
	// Degraded: the node-local fallback limit applies.
	local := mustAcquire(t, p, "u", limit)
	_, err := p.Acquire(context.Background(), "u", limit, nil)
	le := limitError(t, err, ErrLimit)
	if got, want := *le, (LimitError{Limit: 1, InUse: 1, RetryAfter: time.Second, Err: ErrLimit}); got != want {
		t.Errorf("degraded limit error = %+v, want %+v", got, want)
	}
	if got := inUse(t, p, "u"); got != 1 {
		t.Errorf("degraded in use = %d, want 1", got)
	}

	// 2. Valkey resumes: the Pool finds it again.
	srv.signal(syscall.SIGCONT)
	eventually(t, 5*time.Second, "the Pool to leave degraded mode", func() bool { return p.Ready() == nil })
	local.Release()
	if got := p.localInUse("u"); got != 0 {
		t.Errorf("local leases after release = %d, want 0", got)
	}

	// 3. A network partition while a lease ends: the release is kept and sent on recovery, well
	// before the lease's 15 s TTL would have freed the slot.
	l = mustAcquire(t, p, "u", limit)
	if got := zcard(t, direct, cfg.Prefix, "u", suffixLeases); got != 1 {
		t.Fatalf("leases in Valkey = %d, want 1", got)
	}
	link.cut()
	l.Release()
	if err := p.Ready(); !errors.Is(err, ErrDegraded) {
		t.Fatalf("ready while partitioned: %v, want ErrDegraded", err)
	}
	link.restore()
	eventually(t, 5*time.Second, "the Pool to leave degraded mode", func() bool { return p.Ready() == nil })
	if got := zcard(t, direct, cfg.Prefix, "u", suffixLeases); got != 0 {
		t.Errorf("leases in Valkey after recovery = %d, want 0 (the failed release was not resent)", got)
	}

	// Back on Valkey: the plan's limit, counted across nodes.
	other := newPool(t, c, cfg)
	var held []*Lease
	for range limit {
		held = append(held, mustAcquire(t, p, "u", limit))
	}
	if got := inUse(t, other, "u"); got != limit {
		t.Errorf("in use seen by another node = %d, want %d", got, limit)
	}
	if _, err := other.Acquire(context.Background(), "u", limit, nil); !errors.Is(err, ErrLimit) {
		t.Errorf("acquire over the limit: err = %v, want ErrLimit", err)
	}

	// 4. Valkey dies with the leases in it, and comes back empty.
	srv.kill()
	for _, l := range held {
		l.Release()
	}
	if err := p.Ready(); !errors.Is(err, ErrDegraded) {
		t.Fatalf("ready with Valkey dead: %v, want ErrDegraded", err)
	}
	local = mustAcquire(t, p, "u", limit)
	if _, err := p.Acquire(context.Background(), "u", limit, nil); !errors.Is(err, ErrLimit) {
		t.Errorf("degraded acquire over the fallback limit: err = %v, want ErrLimit", err)
	}
	srv.start()
	eventually(t, 10*time.Second, "the Pool to leave degraded mode", func() bool { return p.Ready() == nil })
	local.Release()
	for range limit {
		held = append(held, mustAcquire(t, p, "u", limit))
	}
	if got := inUse(t, other, "u"); got != limit {
		t.Errorf("in use after restart = %d, want %d", got, limit)
	}
	for _, l := range held {
		l.Release()
	}
	if got := inUse(t, other, "u"); got != 0 {
		t.Errorf("in use at end = %d, want 0", got)
	}
	p.mu.Lock()
	left := len(p.users)
	p.mu.Unlock()
	if left != 0 {
		t.Errorf("local user entries at end = %d, want 0", left)
	}
}

// TestReadyWithoutValkey: a Pool with no Valkey is ready and counts locally.
func TestReadyWithoutValkey(t *testing.T) {
	p := newPool(t, nil, Config{MaxWait: -1})
	if err := p.Ready(); err != nil {
		t.Errorf("ready: %v", err)
	}
	l := mustAcquire(t, p, "u", 2)
	if got := inUse(t, p, "u"); got != 1 {
		t.Errorf("in use = %d, want 1", got)
	}
	l.Release()
}
