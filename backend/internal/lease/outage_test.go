package lease

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/valkeytest"
)

// TestValkeyOutage: with the default outage policy (fail closed), a Pool whose Valkey hangs,
// is partitioned away or restarts empty admits no stream that Valkey does not count: new
// requests are refused while Valkey is unreachable, a held lease is lost before Valkey's
// earliest expiry of it, a restarted Valkey admits only re-establishments until its recovery
// window ends, and nothing leaks when Valkey is back.
func TestValkeyOutage(t *testing.T) {
	srv := valkeytest.Start(t)
	link := startProxy(t, srv.Addr())
	c := dial(t, link.addr)       // the Pool's view, through a link the test can cut
	direct := dial(t, srv.Addr()) // the test's own view, and another node's
	obs := &counter{}
	const ttl = 2 * time.Second
	cfg := Config{
		Prefix:        testPrefix(t),
		TTL:           ttl,
		MaxWait:       100 * time.Millisecond,
		OpTimeout:     200 * time.Millisecond,
		ProbeInterval: 20 * time.Millisecond,
		Observer:      obs,
	}
	p := newPool(t, c, cfg)
	const limit = 3

	// 1. Valkey hangs (SIGSTOP) while one lease ends and another runs.
	held := mustAcquire(t, p, "u", limit)
	sent := time.Now() // after the acquire was sent: Valkey's expiry is at most ttl after this
	lost := make(chan error, 1)
	held.OnLost(func(err error) { lost <- err })
	l := mustAcquire(t, p, "u", limit)
	srv.Signal(syscall.SIGSTOP)
	l.Release()
	if err := p.Ready(); !errors.Is(err, ErrDegraded) {
		t.Fatalf("ready while Valkey hangs: %v, want ErrDegraded", err)
	}
	if obs.valkeyErrors.Load() == 0 {
		t.Error("no Valkey error observed")
	}
	// Fail closed: no new stream while Valkey cannot count it.
	_, err := p.Acquire(context.Background(), "u", limit, nil)
	if le := limitError(t, err, ErrDegraded); le.RetryAfter <= 0 {
		t.Errorf("degraded refusal retry after %v, want > 0", le.RetryAfter)
	}
	// The held lease cannot be confirmed: its holder gives it up before Valkey could expire it.
	err = recv(t, lost, 2*ttl, "the unconfirmed lease to be lost")
	if at := time.Now(); !at.Before(sent.Add(ttl)) {
		t.Errorf("lease lost %v after its acquire, not before its TTL %v", at.Sub(sent), ttl)
	}
	if !errors.Is(err, ErrLost) || !errors.Is(err, ErrDegraded) {
		t.Errorf("lost with %v, want ErrLost and ErrDegraded", err)
	}
	held.Release()

	// 2. Valkey resumes: the Pool finds it again and sends the releases it kept.
	srv.Signal(syscall.SIGCONT)
	eventually(t, 5*time.Second, "the Pool to leave degraded mode", func() bool { return p.Ready() == nil })
	eventually(t, 5*time.Second, "the kept releases to reach Valkey", func() bool {
		return zcard(t, direct, cfg.Prefix, "u", suffixLeases) == 0
	})

	// 3. A network partition while a lease ends: the release is kept and sent on recovery, well
	// before the lease's TTL would have freed the slot.
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

	// 4. Back on Valkey: the plan's limit, counted across nodes.
	windowed := cfg
	windowed.RecoveryWindow = ttl + time.Second // the default
	other := newPool(t, direct, windowed)
	var leases []*Lease
	for range limit - 1 {
		leases = append(leases, mustAcquire(t, p, "u", limit))
	}
	if got := inUse(t, other, "u"); got != limit-1 {
		t.Errorf("in use seen by another node = %d, want %d", got, limit-1)
	}

	// 5. Valkey dies with those leases in it and comes back empty. Their holder re-establishes
	// them; meanwhile the recovery window keeps new streams out on every node, so that leases
	// no node has re-established yet cannot be outnumbered.
	srv.Stop(syscall.SIGKILL)
	srv.Restart()
	// The other node's first call may meet its broken connection (ErrDegraded) first.
	eventually(t, 2*ttl, "a new request to be held back by the recovery window", func() bool {
		_, err = other.Acquire(context.Background(), "u", limit, nil)
		return errors.Is(err, ErrRecovering)
	})
	if le := limitError(t, err, ErrRecovering); le.RetryAfter < time.Second {
		t.Errorf("recovery refusal retry after %v, want about the window (%v)", le.RetryAfter, ttl)
	}
	eventually(t, 2*ttl, "the leases to be re-established", func() bool {
		return zcard(t, direct, cfg.Prefix, "u", suffixLeases) == int64(limit) // theirs and the sentinel
	})
	for _, l := range leases {
		if err := l.Err(); err != nil {
			t.Errorf("a lease was lost across the restart: %v", err)
		}
	}
	var late *Lease
	eventually(t, 3*ttl, "the window to end and the free slot to be granted", func() bool {
		l, err := other.Acquire(context.Background(), "u", limit, nil)
		if err != nil {
			limitError(t, err, ErrRecovering)
			return false
		}
		late = l
		return true
	})
	_, err = other.Acquire(context.Background(), "u", limit, nil)
	limitError(t, err, ErrLimit) // the re-established leases count
	late.Release()
	for _, l := range leases {
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

// TestOutageShare: with the shared outage policy a partitioned node waits one TTL, then admits
// its share of the limit on its own; when Valkey answers again those leases are moved into it,
// and one that no longer fits (the other node used the slots meanwhile) is lost.
func TestOutageShare(t *testing.T) {
	srv := valkeytest.Start(t)
	link := startProxy(t, srv.Addr())
	const ttl = 500 * time.Millisecond
	cfg := Config{
		Prefix: testPrefix(t), TTL: ttl, MaxWait: -1, OpTimeout: 200 * time.Millisecond,
		ProbeInterval: 20 * time.Millisecond, OutageNodes: 2,
	}
	p := newPool(t, dial(t, link.addr), cfg)
	direct := dial(t, srv.Addr())
	other := newPool(t, direct, cfg)
	const limit = 4 // a share of 2 per node

	link.cut()
	cutAt := time.Now()
	_, err := p.Acquire(context.Background(), "s", limit, nil)
	limitError(t, err, ErrDegraded)
	var local []*Lease
	eventually(t, 4*ttl, "the share to be admitted one TTL into the outage", func() bool {
		l, err := p.Acquire(context.Background(), "s", limit, nil)
		if err != nil {
			return false
		}
		local = append(local, l)
		return true
	})
	if waited := time.Since(cutAt); waited < ttl {
		t.Errorf("first degraded admission %v into the outage, want >= TTL %v", waited, ttl)
	}
	local = append(local, mustAcquire(t, p, "s", limit))
	_, err = p.Acquire(context.Background(), "s", limit, nil)
	if le := limitError(t, err, ErrLimit); le.Limit != 2 {
		t.Errorf("share limit = %d, want 2", le.Limit)
	}
	lost := make(chan error, 2)
	for _, l := range local {
		l.OnLost(func(err error) { lost <- err })
	}

	// The other node still reaches Valkey (a partition, which the share does not cover) and
	// takes three slots: only one of this node's two fits when it comes back.
	var theirs []*Lease
	for range 3 {
		theirs = append(theirs, mustAcquire(t, other, "s", limit))
	}
	link.restore()
	eventually(t, 5*time.Second, "the Pool to leave degraded mode", func() bool { return p.Ready() == nil })
	err = recv(t, lost, time.Second, "the lease that does not fit to be lost")
	if !errors.Is(err, ErrLost) || !errors.Is(err, ErrLimit) {
		t.Errorf("lost with %v, want ErrLost and ErrLimit", err)
	}
	if got := inUse(t, other, "s"); got != limit {
		t.Logf("zset: %v", direct.Do(context.Background(), direct.B().Zrange().Key(key(cfg.Prefix, "s", suffixLeases)).Min("0").Max("-1").Withscores().Build()))
		t.Errorf("in use after recovery = %d, want %d", got, limit)
	}
	for _, l := range append(local, theirs...) {
		l.Release()
	}
	if got := inUse(t, other, "s"); got != 0 {
		t.Errorf("in use at end = %d, want 0", got)
	}
	if got := p.localInUse("s"); got != 0 {
		t.Errorf("local leases at end = %d, want 0", got)
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
