package lease

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"
)

// maxPending bounds the releases kept for when Valkey answers again. Past it, leases lapse by TTL.
const maxPending = 10000

// health tracks whether Valkey answers. While it does not, leases go to the node-local limiter,
// and releases that failed wait in pending for the prober to send them once Valkey is back.
type health struct {
	degraded atomic.Bool // read without mu on every acquire; written under mu

	mu       sync.Mutex
	since    time.Time
	lastErr  string
	failures uint64 // Valkey errors so far; recover only clears degraded if none came meanwhile
	pending  []pendingRelease
	kick     chan struct{} // wakes the prober when the Pool becomes degraded
}

type pendingRelease struct{ user, id string }

func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.degraded.Load() {
		return nil
	}
	return fmt.Errorf("lease: %w since %s (%s)", ErrDegraded, h.since.UTC().Format(time.RFC3339), h.lastErr)
}

// useValkey reports whether leases go to Valkey now.
func (p *Pool) useValkey() bool {
	return p.client != nil && !p.health.degraded.Load()
}

// valkeyFailed records a failed Valkey call: it counts it and switches to the node-local limiter,
// logging once per transition. Errors from Valkey name no content, only addresses and codes.
func (p *Pool) valkeyFailed(err error) {
	p.cfg.Observer.ValkeyError()
	h := &p.health
	h.mu.Lock()
	was := h.degraded.Swap(true)
	h.failures++
	h.lastErr = err.Error()
	if !was {
		h.since = p.cfg.Clock.Now()
	}
	h.mu.Unlock()
	if !was {
		p.log.Warn("valkey unreachable: outage policy in force until it answers",
			"outage", p.outagePolicy(), "err", err)
		select {
		case h.kick <- struct{}{}:
		default:
		}
	}
}

// addPending keeps a release (or a possibly applied acquire) to send once Valkey answers again.
func (p *Pool) addPending(user, id string) {
	h := &p.health
	h.mu.Lock()
	if len(h.pending) < maxPending {
		h.pending = append(h.pending, pendingRelease{user, id})
	}
	h.mu.Unlock()
}

// probe runs while the Pool is open: whenever the Pool is degraded it pings Valkey every
// ProbeInterval until it answers, then sends the pending releases and switches back.
func (p *Pool) probe() {
	defer p.prober.Done()
	for {
		select {
		case <-p.quit:
			return
		case <-p.health.kick:
		}
		t, tick := p.cfg.Clock.NewTicker(p.cfg.ProbeInterval)
		for !p.recover() {
			select {
			case <-p.quit:
				t.Stop()
				return
			case <-tick:
			}
		}
		t.Stop()
	}
}

// recover pings Valkey and, when it answers, sends pending releases and leaves degraded mode.
func (p *Pool) recover() bool {
	h := &p.health
	h.mu.Lock()
	failures := h.failures
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.OpTimeout)
	defer cancel()
	if err := p.client.Do(ctx, p.client.B().Ping().Build()).Error(); err != nil {
		p.cfg.Observer.ValkeyError()
		return false
	}
	h.mu.Lock()
	pending := h.pending
	h.pending = nil
	h.mu.Unlock()
	if err := p.forget(ctx, pending...); err != nil {
		p.cfg.Observer.ValkeyError()
		h.mu.Lock()
		h.pending = append(h.pending, pending...) // ZREM is idempotent: send them all again later
		h.mu.Unlock()
		return false
	}
	if !p.adoptLocal() {
		return false
	}
	h.mu.Lock()
	if h.failures != failures { // a call failed since the ping: look again next tick
		h.mu.Unlock()
		return false
	}
	h.degraded.Store(false)
	h.mu.Unlock()
	p.log.Info("valkey answers again: leases enforced across nodes", "released", len(pending))
	return true
}

// adoptLocal moves the leases taken node-locally during an outage (outage policy "share") into
// Valkey, counted against each user's limit, before the Pool leaves degraded mode; a lease that
// no longer fits is lost. false: Valkey failed meanwhile (try again later).
func (p *Pool) adoptLocal() bool {
	p.mu.Lock()
	var local []*Lease
	for l := range p.leases {
		l.mu.Lock()
		if l.local && !l.ended {
			local = append(local, l)
		}
		l.mu.Unlock()
	}
	p.mu.Unlock()
	for _, l := range local {
		sent := p.cfg.Clock.Now()
		ok, err := p.reestablish(l.user, l.id, l.limit, sent.Add(p.cfg.OpTimeout))
		if err != nil {
			return false
		}
		l.mu.Lock()
		switch {
		case l.ended: // released meanwhile: it must not stay in Valkey
			l.mu.Unlock()
			p.releaseValkey(context.Background(), l.user, l.id)
			continue
		case !ok:
			call := l.lose(fmt.Errorf("%w: taken during a Valkey outage, it does not fit the limit now: %w", ErrLost, ErrLimit))
			l.mu.Unlock()
			call()
			continue
		}
		l.local = false
		l.mu.Unlock()
		p.releaseLocal(l.user)
		l.startRenewal(sent)
	}
	return true
}

func (p *Pool) zrem(ctx context.Context, user, id string) error {
	return p.client.Do(ctx, p.client.B().Zrem().Key(key(p.cfg.Prefix, user, suffixLeases)).Member(id).Build().ToRetryable()).Error()
}

// forget removes ids from every key of their users (as lease and as ticket), pipelined.
func (p *Pool) forget(ctx context.Context, ids ...pendingRelease) error {
	if len(ids) == 0 {
		return nil
	}
	cmds := make(valkey.Commands, 0, 3*len(ids))
	for _, r := range ids {
		for _, k := range userKeys(p.cfg.Prefix, r.user) {
			cmds = append(cmds, p.client.B().Zrem().Key(k).Member(r.id).Build().ToRetryable())
		}
	}
	for _, res := range p.client.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return err
		}
	}
	return nil
}

// attempt is the outcome of one look at a limiter.
type attempt struct {
	admitted bool
	local    bool // decided by the node-local limiter
	inUse    int
	limit    int           // the effective limit applied
	position int           // 1-based queue position; 0 when not queued
	hold     time.Duration // what is left of a recovery window (or outage wait) that kept it out
	sent     time.Time     // when the look was sent to Valkey
	err      error         // ErrDegraded: the outage policy refused without a look
}

// tryValkey runs acquireScript once. life is how long the ticket may stay queued without another
// attempt (0: do not queue). On an error the lease may or may not have been added: it is
// released again (now, or once Valkey answers).
func (p *Pool) tryValkey(ctx context.Context, user, id string, limit int, life time.Duration) (attempt, error) {
	cctx, cancel := context.WithTimeout(ctx, p.cfg.OpTimeout)
	defer cancel()
	sent := p.cfg.Clock.Now()
	v, err := p.execAcquire(cctx, user, id, limit, life, false)
	if err != nil {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.OpTimeout)
		if p.forget(rctx, pendingRelease{user, id}) != nil {
			p.addPending(user, id)
		}
		rcancel()
		return attempt{}, fmt.Errorf("lease: acquire: %w", err)
	}
	return attempt{admitted: v[0] == 1, inUse: int(v[1]), limit: limit, position: int(v[2]),
		hold: time.Duration(v[3]) * time.Millisecond, sent: sent}, nil
}

// execAcquire runs acquireScript: a new request (queued for life when life > 0), or with keep
// the re-establishment of a lease this node still holds.
func (p *Pool) execAcquire(ctx context.Context, user, id string, limit int, life time.Duration, keep bool) ([]int64, error) {
	reestablish := "0"
	if keep {
		reestablish = "1"
	}
	args := []string{id, strconv.Itoa(limit), strconv.FormatInt(p.cfg.TTL.Milliseconds(), 10),
		strconv.FormatInt(life.Milliseconds(), 10), strconv.FormatInt(p.cfg.RecoveryWindow.Milliseconds(), 10), reestablish}
	v, err := acquireScript.Exec(ctx, p.client, userKeys(p.cfg.Prefix, user), args).AsIntSlice()
	if err == nil && len(v) != 4 {
		err = fmt.Errorf("acquire script: %d values, want 4", len(v))
	}
	return v, err
}

// reestablish puts a lease this node still holds back into Valkey (it lapsed, or Valkey lost
// its data, or it was taken node-locally during an outage), counted against limit ahead of
// new requests. false: the limit is in use. The call ends by deadline at the latest.
func (p *Pool) reestablish(user, id string, limit int, deadline time.Time) (bool, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, p.cfg.OpTimeout)
	defer cancel2()
	v, err := p.execAcquire(ctx, user, id, limit, 0, true)
	if err != nil {
		p.valkeyFailed(err)
		return false, err
	}
	return v[0] == 1, nil
}

// leaveValkey removes a waiter's ticket on a context that survives the caller's cancellation.
func (p *Pool) leaveValkey(ctx context.Context, user, ticket string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.OpTimeout)
	defer cancel()
	keys := userKeys(p.cfg.Prefix, user)
	if err := dequeueScript.Exec(cctx, p.client, keys[1:], []string{ticket}).Error(); err != nil {
		p.valkeyFailed(err) // the ticket lapses on its own
	}
}

// renewValkey extends a lease; false means the lease is gone. The call ends by deadline at
// the latest.
func (p *Pool) renewValkey(user, id string, deadline time.Time) (bool, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, p.cfg.OpTimeout)
	defer cancel2()
	n, err := renewScript.Exec(ctx, p.client, []string{key(p.cfg.Prefix, user, suffixLeases)},
		[]string{id, strconv.FormatInt(p.cfg.TTL.Milliseconds(), 10)}).AsInt64()
	if err != nil {
		p.valkeyFailed(err)
		return false, err
	}
	return n == 1, nil
}

// releaseValkey removes a lease; when Valkey does not answer it is kept for the prober.
func (p *Pool) releaseValkey(ctx context.Context, user, id string) {
	cctx, cancel := context.WithTimeout(ctx, p.cfg.OpTimeout)
	defer cancel()
	if err := p.zrem(cctx, user, id); err != nil {
		p.addPending(user, id)
		if ctx.Err() == nil {
			p.valkeyFailed(err)
		}
	}
}

func (p *Pool) countValkey(ctx context.Context, user string) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, p.cfg.OpTimeout)
	defer cancel()
	n, err := countScript.Exec(cctx, p.client, []string{key(p.cfg.Prefix, user, suffixLeases)}, nil).AsInt64()
	if err != nil {
		if ctx.Err() == nil {
			p.valkeyFailed(err)
		}
		return 0, fmt.Errorf("lease: count: %w", err)
	}
	return int(n), nil
}
