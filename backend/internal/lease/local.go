package lease

import "slices"

// local is this node's view of one user: leases held in the node-local limiter (no Valkey, or
// Valkey unreachable), the local FIFO queue for that limiter, and a broadcast channel that
// wakes this node's waiters when one of the user's slots frees or the queue moves.
//
// All fields are guarded by Pool.mu. An entry is dropped when nothing refers to it.
type local struct {
	inUse   int           // leases held in the node-local limiter
	queue   []string      // tickets waiting in the node-local limiter, head first
	waiters int           // Acquire calls of this user waiting on this node (either limiter)
	wake    chan struct{} // closed and replaced by notify; nil when no waiter
}

// entry returns the user's entry, creating it. Caller holds p.mu.
func (p *Pool) entry(user string) *local {
	e := p.users[user]
	if e == nil {
		e = &local{}
		p.users[user] = e
	}
	return e
}

// tidy drops the user's entry when it holds nothing. Caller holds p.mu.
func (p *Pool) tidy(user string, e *local) {
	if e.inUse == 0 && len(e.queue) == 0 && e.waiters == 0 {
		delete(p.users, user)
	}
}

// watch registers a waiter of user and returns nothing; unwatch undoes it.
func (p *Pool) watch(user string) {
	p.mu.Lock()
	p.entry(user).waiters++
	p.mu.Unlock()
}

func (p *Pool) unwatch(user string) {
	p.mu.Lock()
	if e := p.users[user]; e != nil {
		e.waiters--
		if e.waiters == 0 {
			e.wake = nil
		}
		p.tidy(user, e)
	}
	p.mu.Unlock()
}

// wakeChan returns the channel that the next notify(user) closes. Take it before looking at the
// limiter, so a release that happens after the look is not missed.
func (p *Pool) wakeChan(user string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.entry(user)
	if e.wake == nil {
		e.wake = make(chan struct{})
	}
	return e.wake
}

// notify wakes this node's waiters of user: a slot freed or the queue moved.
func (p *Pool) notify(user string) {
	p.mu.Lock()
	if e := p.users[user]; e != nil && e.wake != nil {
		close(e.wake)
		e.wake = nil
	}
	p.mu.Unlock()
}

// tryLocal is the node-local twin of acquireScript: it admits ticket if fewer tickets stand ahead
// of it than there are free slots, else queues it when queue is set.
func (p *Pool) tryLocal(user, ticket string, limit int, queue bool) attempt {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.entry(user)
	rank := slices.Index(e.queue, ticket)
	queued := rank >= 0
	if !queued {
		rank = len(e.queue)
	}
	if rank < limit-e.inUse {
		if queued {
			e.queue = slices.Delete(e.queue, rank, rank+1)
		}
		e.inUse++
		return attempt{admitted: true, inUse: e.inUse, limit: limit}
	}
	if !queue {
		if queued {
			e.queue = slices.Delete(e.queue, rank, rank+1)
		}
		p.tidy(user, e)
		return attempt{inUse: e.inUse, limit: limit}
	}
	if !queued {
		e.queue = append(e.queue, ticket)
	}
	return attempt{inUse: e.inUse, limit: limit, position: rank + 1}
}

// leaveLocal removes ticket from the user's local queue; it reports whether it was there.
func (p *Pool) leaveLocal(user, ticket string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.users[user]
	if e == nil {
		return false
	}
	i := slices.Index(e.queue, ticket)
	if i < 0 {
		return false
	}
	e.queue = slices.Delete(e.queue, i, i+1)
	p.tidy(user, e)
	return true
}

// releaseLocal frees one node-local slot of user.
func (p *Pool) releaseLocal(user string) {
	p.mu.Lock()
	if e := p.users[user]; e != nil && e.inUse > 0 {
		e.inUse--
		p.tidy(user, e)
	}
	p.mu.Unlock()
}

// localInUse counts the user's node-local leases.
func (p *Pool) localInUse(user string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.users[user]; e != nil {
		return e.inUse
	}
	return 0
}
