package lease

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// waiter is one Acquire call: its id (the lease id and its queue ticket) and where it is queued.
type waiter struct {
	user          string
	id            string
	limit         int  // the plan's limit
	position      int  // last position reported to onQueued
	inValkeyQueue bool // its ticket may be in the user's Valkey queue
	inLocalQueue  bool // its ticket is in the node-local queue
	watching      bool // registered for this node's wake-ups
}

// Acquire admits one stream of user under limit. If the user is at the limit it waits, in FIFO
// order with the user's other waiters on every node, for at most Config.MaxWait; onQueued (may be
// nil) gets the 1-based queue position when the request is queued and whenever it moves. On
// timeout it returns a *LimitError wrapping ErrLimit; when the node cap rather than the user
// limit kept it out, one wrapping ErrNodeBusy. Cancelling ctx leaves the queue at once.
//
// The caller must Release the lease when the stream ends, however it ends.
func (p *Pool) Acquire(ctx context.Context, user string, limit int, onQueued func(position int)) (*Lease, error) {
	if user == "" {
		return nil, errors.New("lease: acquire: empty user")
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if limit < 1 {
		p.cfg.Observer.Rejected()
		return nil, &LimitError{Limit: max(limit, 0), RetryAfter: p.cfg.RetryAfter, Err: ErrLimit}
	}
	if l := p.takeParked(user, limit); l != nil {
		p.cfg.Observer.Acquired(0)
		return l, nil
	}
	start := p.cfg.Clock.Now()
	deadline := start.Add(p.cfg.MaxWait)
	w := &waiter{user: user, id: p.newID(), limit: limit}
	defer p.leave(ctx, w)
	for {
		var wake <-chan struct{}
		if w.watching {
			wake = p.wakeChan(user) // before the look, so no release after it goes unnoticed
		}
		remaining := deadline.Sub(p.cfg.Clock.Now())
		a, err := p.try(ctx, w, limit, remaining)
		if err != nil {
			return nil, err
		}
		if a.admitted {
			if w.position > 0 {
				p.notify(user) // the queue moved for the others
			}
			return p.admit(ctx, w, a, start, deadline)
		}
		if a.position == 0 || remaining <= 0 {
			p.cfg.Observer.Rejected()
			return nil, a.refusal(p.cfg.RetryAfter)
		}
		if a.position != w.position {
			w.position = a.position
			if onQueued != nil {
				onQueued(a.position)
			}
		}
		if !w.watching {
			p.watch(user)
			w.watching = true
			continue // look again now that wake-ups reach us
		}
		wait := remaining
		if !a.local {
			wait = min(wait, p.pollDelay()) // releases on other nodes are only seen by looking
		}
		if err := p.wait(ctx, w, wake, wait, a.local, limit); err != nil {
			return nil, err
		}
	}
}

// wait sleeps until the timer, a wake-up worth a look, ctx or Close. In Valkey mode a wake-up
// only ends the wait of a waiter near the head (position <= limit+1, as of its last look): the
// others would look only to learn they are still queued, so they keep to their poll timer and
// a release does not make every waiter of the user run a script. In node-local mode a look is
// cheap and the only way to learn of progress, so every wake-up ends the wait.
func (p *Pool) wait(ctx context.Context, w *waiter, wake <-chan struct{}, d time.Duration, local bool, limit int) error {
	t, timeout := p.cfg.Clock.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("lease: acquire: %w", ctx.Err())
		case <-p.quit:
			return ErrClosed
		case <-timeout:
			return nil
		case <-wake:
			if local || w.position <= limit+1 {
				return nil
			}
			wake = p.wakeChan(w.user)
		}
	}
}

// pollDelay is PollInterval with ±25% jitter, so waiters on many nodes do not look in step.
func (p *Pool) pollDelay() time.Duration {
	d := p.cfg.PollInterval
	return d*3/4 + rand.N(d/2+1)
}

// try looks once at the limiter in force: Valkey, or the node-local one when there is no Valkey
// or it does not answer. remaining > 0 queues the waiter.
func (p *Pool) try(ctx context.Context, w *waiter, limit int, remaining time.Duration) (attempt, error) {
	if p.useValkey() {
		if w.inLocalQueue { // Valkey is back: leave the local queue
			p.leaveLocal(w.user, w.id)
			w.inLocalQueue = false
			p.notify(w.user)
		}
		var life time.Duration
		if remaining > 0 {
			// The ticket outlives the wait by a grace period and is refreshed by each look,
			// so a crashed node's waiters leave the queue on their own.
			life = remaining + p.cfg.OpTimeout + p.cfg.PollInterval
		}
		a, err := p.tryValkey(ctx, w.user, w.id, limit, life)
		if err == nil {
			w.inValkeyQueue = a.position > 0
			return a, nil
		}
		if ctx.Err() != nil {
			return attempt{}, fmt.Errorf("lease: acquire: %w", ctx.Err())
		}
		p.valkeyFailed(err)
		w.inValkeyQueue = false // tryValkey already asked to forget the id everywhere
	}
	lim := limit
	if p.client != nil { // Valkey is unreachable: the outage policy decides
		var hold time.Duration
		lim, hold = p.outageLimit(limit)
		if lim == 0 {
			return attempt{local: true, limit: lim, hold: hold, err: ErrDegraded}, nil
		}
	}
	a := p.tryLocal(w.user, w.id, lim, remaining > 0)
	a.local = true
	w.inLocalQueue = a.position > 0
	return a, nil
}

// leave removes what is left of a finished Acquire call: its queue tickets and its wake-up
// registration. The Valkey ticket goes on a context that survives ctx's cancellation.
func (p *Pool) leave(ctx context.Context, w *waiter) {
	moved := false
	if w.inValkeyQueue {
		p.leaveValkey(ctx, w.user, w.id)
		moved = true
	}
	if w.inLocalQueue {
		moved = p.leaveLocal(w.user, w.id) || moved
	}
	if w.watching {
		p.unwatch(w.user)
	}
	if moved {
		p.notify(w.user)
	}
}

// admit turns an admitted attempt into a Lease, then takes a node slot within the same deadline.
func (p *Pool) admit(ctx context.Context, w *waiter, a attempt, start, deadline time.Time) (*Lease, error) {
	w.inValkeyQueue, w.inLocalQueue = false, false // admission took the ticket out
	l := &Lease{
		pool:  p,
		user:  w.user,
		id:    w.id,
		limit: w.limit,
		local: a.local,
	}
	if !a.local {
		l.startRenewal(a.sent) // owned by l: Release stops it and waits
	}
	if p.node != nil {
		if err := p.takeNodeSlot(ctx, deadline); err != nil {
			l.Release()
			if !errors.Is(err, ErrNodeBusy) {
				return nil, err
			}
			p.cfg.Observer.Rejected()
			return nil, &LimitError{Limit: a.limit, InUse: a.inUse - 1, RetryAfter: p.cfg.RetryAfter, Err: ErrNodeBusy}
		}
		l.node = true
	}
	// Registered only now, complete, so Close never sees a lease still being set up.
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.Release()
		return nil, ErrClosed
	}
	p.leases[l] = struct{}{}
	p.mu.Unlock()
	p.cfg.Observer.Acquired(p.cfg.Clock.Since(start))
	return l, nil
}

// takeNodeSlot waits for a node slot until deadline. Blocked senders on a channel are served in
// arrival order, so the node-wide wait is FIFO too.
func (p *Pool) takeNodeSlot(ctx context.Context, deadline time.Time) error {
	select {
	case p.node <- struct{}{}:
		return nil
	default:
	}
	wait := deadline.Sub(p.cfg.Clock.Now())
	if wait <= 0 {
		return ErrNodeBusy
	}
	t, timeout := p.cfg.Clock.NewTimer(wait)
	defer t.Stop()
	select {
	case p.node <- struct{}{}:
		return nil
	case <-timeout:
		return ErrNodeBusy
	case <-ctx.Done():
		return fmt.Errorf("lease: acquire: %w", ctx.Err())
	case <-p.quit:
		return ErrClosed
	}
}

// refusal is the error for an attempt that was not admitted.
func (a attempt) refusal(retry time.Duration) *LimitError {
	switch {
	case a.err != nil:
		return &LimitError{Limit: a.limit, InUse: a.inUse, RetryAfter: max(retry, a.hold), Err: a.err}
	case a.hold > 0:
		return &LimitError{Limit: a.limit, InUse: a.inUse, RetryAfter: max(retry, a.hold), Err: ErrRecovering}
	}
	return &LimitError{Limit: a.limit, InUse: a.inUse, RetryAfter: retry, Err: ErrLimit}
}

// outageLimit is a user's limit on this node while Valkey is unreachable, and when it is 0
// for now only, how long until that changes. Fail closed (OutageNodes 0): 0. Shared: limit/N,
// but only once one TTL has passed since this node lost Valkey: by then every lease any node
// held before the outage has been lost by its holder (it could not be confirmed).
func (p *Pool) outageLimit(limit int) (int, time.Duration) {
	if p.cfg.OutageNodes == 0 {
		return 0, p.cfg.ProbeInterval
	}
	share := limit / p.cfg.OutageNodes
	if share == 0 {
		return 0, p.cfg.ProbeInterval
	}
	p.health.mu.Lock()
	since := p.health.since
	p.health.mu.Unlock()
	if wait := p.cfg.TTL - p.cfg.Clock.Since(since); wait > 0 {
		return 0, wait
	}
	return share, 0
}

// outagePolicy names the outage policy for logs.
func (p *Pool) outagePolicy() string {
	if p.cfg.OutageNodes == 0 {
		return "closed: no new streams"
	}
	return fmt.Sprintf("share: limit/%d per node after one TTL", p.cfg.OutageNodes)
}
