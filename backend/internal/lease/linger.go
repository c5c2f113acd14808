package lease

import (
	"context"

	"github.com/valkey-io/valkey-go"
)

// Lingering leases. An editor's completion requests come in bursts, one every few hundred
// milliseconds while its user types. Rather than giving a finished stream's slot back to Valkey
// and asking for it again a moment later, the node keeps the lease, still counted in Valkey and
// still renewed, for Config.Linger; a new request of the same user on this node takes it over
// without a Valkey round trip, so its provider call starts at once. Since the slot never left
// Valkey's count, the plan's limit holds at the provider: this is the one way a request skips
// the round trip.
//
// A lease lingers only when nobody waits for a slot of that user (the release asks Valkey, in
// the round trip the release makes anyway): a waiter on another node then gets the slot as soon
// as the stream ends, and waits at most Config.Linger for a slot that lingers when it queues
// later. Without Valkey, while degraded, or with a node cap, leases do not linger.

// parkScript keeps a finished lease in place when no waiter is queued for the user, or else
// removes it. KEYS: leases, queue; ARGV: [1] lease id. Reply: 1 kept, 0 removed.
var parkScript = valkey.NewLuaScriptRetryable(`
if redis.call('ZCARD', KEYS[2]) == 0 and redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
redis.call('ZREM', KEYS[1], ARGV[1])
return 0
`)

// park tries to keep l lingering instead of releasing it; false: release it as usual.
func (p *Pool) park(l *Lease) bool {
	if p.cfg.Linger <= 0 || p.node != nil || !p.useValkey() {
		return false
	}
	l.mu.Lock()
	ok := !l.local && l.lost == nil
	l.onLost = nil // the stream has ended; a loss while lingering only drops the lease
	l.parked = ok
	l.mu.Unlock()
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.OpTimeout)
	defer cancel()
	keys := userKeys(p.cfg.Prefix, l.user)
	kept, err := parkScript.Exec(ctx, p.client, keys[:2], []string{l.id}).AsInt64()
	if err != nil || kept != 1 {
		return false // the release that follows removes it (again: ZREM is idempotent)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	l.linger = p.cfg.Clock.AfterFunc(p.cfg.Linger, func() { p.expire(l) })
	p.parked[l.user] = append(p.parked[l.user], l)
	return true
}

// expire ends a lingering lease nobody took.
func (p *Pool) expire(l *Lease) {
	if p.unpark(l) {
		l.end(context.Background())
	}
}

// unpark takes l out of the lingering leases; false when it was not there (taken, or Close
// has it).
func (p *Pool) unpark(l *Lease) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.parked[l.user]
	for i, x := range list {
		if x == l {
			list[i] = list[len(list)-1]
			list = list[:len(list)-1]
			if len(list) == 0 {
				delete(p.parked, l.user)
			} else {
				p.parked[l.user] = list
			}
			return true
		}
	}
	return false
}

// takeParked hands a lingering lease of user to a new stream, as a new Lease with the same
// id in Valkey; nil when there is none that still holds.
func (p *Pool) takeParked(user string, limit int) *Lease {
	for {
		p.mu.Lock()
		list := p.parked[user]
		var old *Lease
		if len(list) > 0 {
			old = list[len(list)-1]
			if len(list) == 1 {
				delete(p.parked, user)
			} else {
				p.parked[user] = list[:len(list)-1]
			}
		}
		p.mu.Unlock()
		if old == nil {
			return nil
		}
		if !old.linger.Stop() { // expire is ending it
			continue
		}
		old.stopRenewal()
		old.mu.Lock()
		lost, confirmed := old.lost, old.confirmed
		old.mu.Unlock()
		if lost != nil {
			old.end(context.Background())
			continue
		}
		l := &Lease{pool: p, user: user, id: old.id, limit: limit}
		l.startRenewal(confirmed)
		p.mu.Lock()
		delete(p.leases, old)
		p.leases[l] = struct{}{}
		p.mu.Unlock()
		return l
	}
}

// parkedIDs lists the ids of user's lingering leases (for tests).
func (p *Pool) parkedIDs(user string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, l := range p.parked[user] {
		ids = append(ids, l.id)
	}
	return ids
}
