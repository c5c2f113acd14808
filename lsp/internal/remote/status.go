package remote

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
	wire "github.com/codingplan/codingplan/shared"
)

// statusKey is what makes two statuses different for the watchers; RetryAfterMS counts down, so
// the deadline stands in for it.
type statusKey struct {
	state, message string
	reason         string
	retryAt        time.Time
	plan           Plan
	hasPlan        bool
	models         string // modelsKey of the models
}

// statusLocked computes the status at now, its key, and when it changes by itself (zero when
// it does not).
func (c *Client) statusLocked(now time.Time) (Status, statusKey, time.Time) {
	s := Status{State: c.link.state, Message: c.link.message, Reason: c.link.reason}
	var retryAt, next time.Time
	if c.link.state == lspx.StateReady {
		busy, busyAt := c.busyLocked(now)
		switch {
		case now.Before(c.limited):
			s.State, s.Message, s.Reason = c.limitOf, c.limitMsg, lspx.ReasonRateLimited
			if c.limitOf != lspx.StateRateLimited {
				s.Reason = lspx.ReasonBackendBusy
			}
			retryAt, next = c.limited, c.limited
		case c.quota != "":
			s.State, s.Message, s.Reason = lspx.StateQuotaExceeded, c.quota, lspx.ReasonQuotaExceeded
		case busy:
			s.State, s.Message = lspx.StateBusy, "completing"
		default:
			next = busyAt
		}
	} else if now.Before(c.link.retryAt) {
		retryAt = c.link.retryAt
	}
	if !retryAt.IsZero() {
		s.RetryAfterMS = max(1, retryAt.Sub(now).Milliseconds())
	}
	key := statusKey{state: s.State, message: s.Message, reason: s.Reason, retryAt: retryAt, models: modelsKey(c.models)}
	s.Models = slices.Clone(c.models)
	if c.plan != nil {
		p := *c.plan
		s.Plan = &p
		key.plan, key.hasPlan = p, true
	}
	return s, key, next
}

func (c *Client) setLink(l link) {
	c.mu.Lock()
	c.setLinkLocked(l)
	c.mu.Unlock()
}

func (c *Client) setLinkLocked(l link) {
	c.link = l
	c.broadcastLocked()
}

// broadcastLocked wakes Streams waiting for a connection and the status notifier.
func (c *Client) broadcastLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
	c.poke(c.notify)
}

func (c *Client) updatePlanLocked(p *wire.Plan) {
	if p == nil {
		return
	}
	c.plan = &Plan{Name: p.Name, Concurrency: p.Concurrency, InUse: p.InUse}
	c.poke(c.notify)
}

// updateModelsLocked keeps the models a hello listed.
func (c *Client) updateModelsLocked(m []wire.Model) {
	c.models = slices.Clone(m)
	c.poke(c.notify)
}

// modelsKey sums up models for statusKey: what the server's decisions depend on.
func modelsKey(models []wire.Model) string {
	var b strings.Builder
	for _, m := range models {
		fmt.Fprintf(&b, "%s%v%s%v%t%s;", m.Name, m.Aliases, "|", m.Ops, m.Default, m.State)
	}
	return b.String()
}

// busyLocked reports whether a stream has run for BusyAfter, and else when the first running
// stream will have (zero with none running).
func (c *Client) busyLocked(now time.Time) (bool, time.Time) {
	var first time.Time
	for _, started := range c.started {
		at := started.Add(c.cfg.BusyAfter)
		if !now.Before(at) {
			return true, time.Time{}
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return false, first
}

// streamStarted notes stream n. It wakes nobody: the status says busy only once a stream has
// run for BusyAfter, so the notifier's timer is armed for then, unless it fires sooner anyway.
func (c *Client) streamStarted(n uint64) {
	now := c.cfg.Clock.Now()
	c.mu.Lock()
	c.started[n] = now
	c.armLocked(now, now.Add(c.cfg.BusyAfter))
	c.mu.Unlock()
}

// streamEnded forgets stream n, and wakes the notifier only if the status said busy.
func (c *Client) streamEnded(n uint64) {
	c.mu.Lock()
	delete(c.started, n)
	busy := c.lastKey.state == lspx.StateBusy
	c.mu.Unlock()
	if busy {
		c.poke(c.notify)
	}
}

// armLocked makes the notifier look again at at, unless it is to look sooner already.
func (c *Client) armLocked(now, at time.Time) {
	if !c.timerAt.IsZero() && !at.Before(c.timerAt) {
		return
	}
	c.timerAt = at
	c.timer.Reset(at.Sub(now))
}

// noteStreamError records what a stream's error frame says about the plan.
func (c *Client) noteStreamError(e *wire.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updatePlanLocked(e.Plan)
	switch e.Code {
	case wire.CodeRateLimited:
		wait := time.Duration(e.RetryAfterMS) * time.Millisecond
		if wait <= 0 {
			wait = time.Second
		}
		c.limited, c.limitOf = c.cfg.Clock.Now().Add(wait), lspx.StateRateLimited
		c.limitMsg = "rate limited"
		if e.Message != "" {
			c.limitMsg = "rate limited: " + wire.Clip(e.Message, clipMessage)
		}
	case wire.CodeInternal:
		// A fault of the server's that passes, with a retry hint: e.g. its lease store is
		// unreachable or restarted, so it starts no stream until then.
		if e.RetryAfterMS <= 0 {
			break
		}
		c.limited, c.limitOf = c.cfg.Clock.Now().Add(time.Duration(e.RetryAfterMS)*time.Millisecond), lspx.StateError
		c.limitMsg = "the backend cannot start completions right now"
		if e.Message != "" {
			c.limitMsg = "the backend cannot start completions right now: " + wire.Clip(e.Message, clipMessage)
		}
	case wire.CodeQuotaExceeded:
		c.quota = "quota exceeded"
		if e.Message != "" {
			c.quota = "quota exceeded: " + wire.Clip(e.Message, clipMessage)
		}
	}
	c.poke(c.notify)
}

// noteStreamDone records a stream that succeeded: the quota is evidently not exhausted.
func (c *Client) noteStreamDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.quota != "" {
		c.quota = ""
		c.poke(c.notify)
	}
}

// Watch has f called with each new status, in order, from one goroutine that Run owns, until
// stop is called; f must not block for long. It is how the server learns of changes.
func (c *Client) Watch(f func(Status)) (stop func()) {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.watchers == nil {
		c.watchers = map[int]func(Status){}
	}
	c.watchSeq++
	id := c.watchSeq
	c.watchers[id] = f
	return func() {
		c.watchMu.Lock()
		delete(c.watchers, id)
		c.watchMu.Unlock()
	}
}

// notifyLoop calls the watchers with each new status, coalescing bursts. Its timer (which pokes
// notify) wakes it when the status changes by itself: a rate limit runs out, a stream has run
// long enough to count as busy.
func (c *Client) notifyLoop(ctx context.Context) {
	defer c.timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.notify:
		}
		now := c.cfg.Clock.Now()
		c.mu.Lock()
		if !c.timerAt.IsZero() && !now.Before(c.timerAt) {
			c.timerAt = time.Time{} // it fired
		}
		s, key, next := c.statusLocked(now)
		changed := key != c.lastKey
		c.lastKey = key
		if !next.IsZero() {
			c.armLocked(now, next)
		}
		c.mu.Unlock()
		if changed {
			c.watchMu.Lock()
			for _, f := range c.watchers {
				f(s)
			}
			c.watchMu.Unlock()
		}
	}
}
