// Package lease limits how many model streams each user runs at once, across every backend node.
//
// A lease is one member of a per-user sorted set in Valkey whose score is the lease's expiry in
// Valkey's own clock. One Lua script trims expired leases, counts and adds; the Lease renews
// itself every TTL/3 while the stream lives and is removed when it ends, so a crashed node's
// leases lapse within one TTL. A request over the limit waits, for at most Config.MaxWait, in a
// per-user FIFO queue that is also kept in Valkey, so waiters on every node are served in order
// of arrival. A node-wide cap (Config.NodeCap) protects upstream capacity.
//
// A Lease is valid only while Valkey is known to count it: its holder learns within one TTL
// (less a margin) that it no longer is, and the Lease is then lost (see Lease.OnLost), so the
// stream stops before another node can have taken its slot. A lease that Valkey forgot (it
// restarted) is re-established when Valkey answers, counted against the limit ahead of new
// requests, or lost when it no longer fits.
//
// Without Valkey (nil client) the same limits hold in this process only. When Valkey is
// configured but unreachable, the Pool reports itself degraded through Ready and applies the
// outage policy (Config.OutageNodes): refuse new streams (the default), or admit a per-node
// share of each plan's limit once every lease from before the outage has lapsed. It goes back
// to Valkey once it answers again. A Pool whose Valkey did not answer when the process started
// begins so, degraded, and connects in the background (Config.Late, LateClient).
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/shared/clock"
)

// Errors at the package edge.
var (
	// ErrLimit: the user's plan limit was reached and no slot freed within the wait.
	ErrLimit = errors.New("concurrency limit reached")
	// ErrNodeBusy: this node's cap was reached and no node slot freed within the wait.
	ErrNodeBusy = errors.New("node at capacity")
	// ErrClosed: the Pool was closed.
	ErrClosed = errors.New("lease pool closed")
	// ErrDegraded: Valkey is unreachable; the outage policy applies (see Ready). A request
	// the policy refuses gets a *LimitError wrapping it.
	ErrDegraded = errors.New("valkey unreachable")
	// ErrRecovering: Valkey started less than a recovery window (one TTL) ago, so leases it
	// lost may still be in use; new streams wait for the window's end. A *LimitError wraps it.
	ErrRecovering = errors.New("valkey restarted recently, leases are being re-established")
	// ErrLost: a lease ended before Release (see Lease.OnLost); the stream must stop. It is
	// wrapped together with the reason: ErrLimit (re-establishing it would exceed the limit)
	// or ErrDegraded (Valkey did not confirm it in time).
	ErrLost = errors.New("lease lost")
)

// LimitError says why a request was not admitted and when to try again. It wraps ErrLimit;
// ErrNodeBusy when the node cap was the obstacle; ErrDegraded when Valkey is unreachable and
// the outage policy refused; ErrRecovering while a recovery window holds new streams back.
type LimitError struct {
	Limit      int           // the user's effective limit (the outage share while degraded)
	InUse      int           // the user's leases in use when the wait ended
	RetryAfter time.Duration // a hint for the client
	Err        error         // ErrLimit, ErrNodeBusy, ErrDegraded or ErrRecovering
}

func (e *LimitError) Error() string {
	if !errors.Is(e.Err, ErrLimit) && e.Err != nil {
		return fmt.Sprintf("lease: %v, retry after %v", e.Err, e.RetryAfter)
	}
	return fmt.Sprintf("lease: %v (%d of %d in use), retry after %v", e.Err, e.InUse, e.Limit, e.RetryAfter)
}

// Unwrap returns ErrLimit or ErrNodeBusy.
func (e *LimitError) Unwrap() error {
	if e.Err == nil {
		return ErrLimit
	}
	return e.Err
}

// Observer receives events for metrics. Implementations must be fast and safe for concurrent use.
type Observer interface {
	// Acquired: a lease was granted; wait is how long Acquire took, queueing included.
	Acquired(wait time.Duration)
	// Rejected: a request gave up with a LimitError.
	Rejected()
	// ValkeyError: a Valkey call failed (the Pool may have switched to its outage policy).
	ValkeyError()
	// Lost: a lease was lost while its stream ran (see Lease.OnLost).
	Lost()
}

// Config tunes a Pool. Zero fields take the defaults in brackets.
type Config struct {
	// Prefix starts every key: <Prefix>:{<user>}:leases. ["codingplan"]
	Prefix string
	// TTL is how long a lease lives in Valkey unless renewed; renewal runs every TTL/3. [15s]
	TTL time.Duration
	// MaxWait bounds how long Acquire waits in the user's FIFO queue, plus for a node slot.
	// Negative: never wait. [2s]
	MaxWait time.Duration
	// NodeCap caps the leases this node holds for all users together, to protect upstream
	// capacity. 0: no cap. [0]
	NodeCap int
	// OutageNodes is the outage policy, for while Valkey is unreachable. 0 fails closed: no
	// new stream is admitted (running ones go on while their leases are valid). N > 0 is how
	// many nodes share the plan limits: each admits up to limit/N (rounded down) of a user's
	// streams, starting one TTL after it lost Valkey, when every lease from before has
	// lapsed; so N nodes admit at most the limit together, if N is right and Valkey is down
	// for all of them (a partition that leaves some nodes on Valkey is not covered). [0]
	OutageNodes int
	// RetryAfter is the retry hint a rejected request gets. [1s]
	RetryAfter time.Duration
	// PollInterval is how often a waiter re-checks Valkey for slots freed on other nodes,
	// with ±25% jitter; releases on this node wake waiters at once. [50ms]
	PollInterval time.Duration
	// OpTimeout bounds each Valkey call; a call that takes longer counts as Valkey unreachable. [1s]
	OpTimeout time.Duration
	// ProbeInterval is how often a degraded Pool pings Valkey to find it back. [1s]
	ProbeInterval time.Duration
	// RecoveryWindow is how long after its start a Valkey admits no new stream of a user
	// who has no lease in it, only re-establishments (see acquireScript): a Valkey that keeps
	// nothing on disk forgets every lease when it restarts, while their streams run on until
	// their holders notice, within one TTL. Negative: no window, for a Valkey that keeps its
	// data across restarts, or a single node. [TTL + 1s]
	RecoveryWindow time.Duration
	// Linger keeps a finished stream's lease on this node, still counted in Valkey, for this
	// long, so that the user's next stream here takes it without a Valkey round trip (see
	// linger.go). 0: release at once. [0]
	Linger time.Duration
	// NodeID starts every lease id of this node. [random, 16 hex digits]
	NodeID string
	// Observer receives events for metrics. [none]
	Observer Observer
	// Clock measures and schedules waits, renewals and lingers; the deadlines of Valkey calls
	// are taken from it too, so it must keep to real time (synctest's does). [the real clock]
	Clock clock.Clock
	// Late is the Pool's client, in place of New's, when Valkey did not answer yet (see
	// NewLateClient): the Pool starts degraded, under the outage policy, and connects Late in
	// the background, backing off, until it answers or the Pool closes; the prober then finds
	// Valkey and the Pool leaves degraded. [none]
	Late *LateClient
}

// Defaults of Config.
const (
	defaultPrefix        = "codingplan"
	defaultTTL           = 15 * time.Second
	defaultMaxWait       = 2 * time.Second
	defaultRetryAfter    = time.Second
	defaultPollInterval  = 50 * time.Millisecond
	defaultOpTimeout     = time.Second
	defaultProbeInterval = time.Second
)

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Prefix == "" {
		c.Prefix = defaultPrefix
	}
	def(&c.TTL, defaultTTL)
	def(&c.MaxWait, defaultMaxWait)
	def(&c.RecoveryWindow, c.TTL+time.Second)
	if c.RecoveryWindow < 0 {
		c.RecoveryWindow = 0
	}
	if c.MaxWait < 0 {
		c.MaxWait = 0
	}
	if c.NodeCap < 0 {
		c.NodeCap = 0
	}
	if c.OutageNodes < 0 {
		c.OutageNodes = 0
	}
	def(&c.RetryAfter, defaultRetryAfter)
	def(&c.PollInterval, defaultPollInterval)
	def(&c.OpTimeout, defaultOpTimeout)
	def(&c.ProbeInterval, defaultProbeInterval)
	if c.NodeID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.NodeID = hex.EncodeToString(b[:])
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	c.Clock = clock.OrReal(c.Clock)
	return c
}

type nopObserver struct{}

func (nopObserver) Acquired(time.Duration) {}
func (nopObserver) Rejected()              {}
func (nopObserver) ValkeyError()           {}
func (nopObserver) Lost()                  {}

// Pool hands out leases. It is safe for concurrent use.
type Pool struct {
	client valkey.Client // nil: node-local only
	cfg    Config
	log    *slog.Logger
	seq    atomic.Uint64
	node   chan struct{} // node-wide semaphore; nil without a cap

	mu     sync.Mutex
	users  map[string]*local
	leases map[*Lease]struct{}
	parked map[string][]*Lease // lingering leases by user, most recent last
	closed bool

	health health

	quit    chan struct{}
	prober  sync.WaitGroup     // the prober and a Late client's connection
	connect context.CancelFunc // stops a Late client's connection; nil without one
}

// New returns a Pool using client, or only this process when client is nil, or Config.Late
// when it is set. Close it to release this node's leases and stop its background work.
func New(client valkey.Client, cfg Config, log *slog.Logger) *Pool {
	if cfg.Late != nil {
		client = cfg.Late
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{
		client: client,
		cfg:    cfg.withDefaults(),
		log:    log,
		users:  map[string]*local{},
		leases: map[*Lease]struct{}{},
		parked: map[string][]*Lease{},
		quit:   make(chan struct{}),
	}
	p.health.kick = make(chan struct{}, 1)
	if p.cfg.NodeCap > 0 {
		p.node = make(chan struct{}, p.cfg.NodeCap)
	}
	if client != nil {
		p.prober.Add(1)
		go p.probe()
	}
	if late := p.cfg.Late; late != nil {
		// Degraded now, not at the first request; the prober starts looking for Valkey.
		p.valkeyFailed(ErrNotConnected)
		var ctx context.Context
		ctx, p.connect = context.WithCancel(context.Background())
		p.prober.Go(func() { late.Connect(ctx) })
	}
	return p
}

// Ready is nil when leases are enforced as configured: Valkey answers, or no Valkey is
// configured. While Valkey is unreachable it returns an error wrapping ErrDegraded.
func (p *Pool) Ready() error {
	return p.health.err()
}

// InUse returns how many leases user holds: across all nodes from Valkey, or on this node when
// there is no Valkey or it is unreachable.
func (p *Pool) InUse(ctx context.Context, user string) (int, error) {
	if p.useValkey() {
		n, err := p.countValkey(ctx, user)
		if err == nil {
			return n, nil
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("lease: count: %w", ctx.Err())
		}
	}
	return p.localInUse(user), nil
}

// Close releases every lease this node holds, stops the Pool's background work and makes later
// Acquire calls fail with ErrClosed. ctx bounds the wait for the releases.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	held := make([]*Lease, 0, len(p.leases))
	for l := range p.leases {
		held = append(held, l)
	}
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, l := range held {
		wg.Go(func() {
			if p.unpark(l) {
				l.linger.Stop()
				l.end(ctx)
				return
			}
			l.once.Do(func() { l.end(ctx) })
		})
	}
	wg.Wait() // each release is bounded by ctx and Config.OpTimeout
	close(p.quit)
	if p.connect != nil {
		p.connect()
	}
	p.prober.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("lease: close: %w", err)
	}
	return nil
}

// newID returns a lease id unique across nodes: node id and a counter.
func (p *Pool) newID() string {
	return p.cfg.NodeID + ":" + strconv.FormatUint(p.seq.Add(1), 36)
}

// Lease is one admitted stream. Release it exactly when the stream ends; extra calls do nothing.
type Lease struct {
	pool  *Pool
	user  string
	id    string
	limit int  // the limit it was admitted under, for re-establishing it
	node  bool // holds a node slot

	once sync.Once

	// Renewal of a Valkey lease: a timer whose function renews and re-arms it, rather than a
	// goroutine per lease, so that neither Acquire nor Release waits for a goroutine to be
	// scheduled. renewing counts the renewal that is scheduled or running; Release stops the
	// timer and waits for it.
	mu        sync.Mutex
	local     bool      // held by the node-local limiter, not in Valkey
	confirmed time.Time // sent time of the last acquire or renew Valkey applied
	timer     clock.Timer
	ended     bool // Release began: no renewal is scheduled again
	renewing  sync.WaitGroup
	lost      error       // why the lease was lost; nil while it holds
	onLost    func(error) // called once when it is lost
	linger    clock.Timer // ends the lease while it lingers (see linger.go)
	parked    bool        // it lingers: its stream has ended
}

// OnLost registers f to be called, once, when the lease is lost before Release: Valkey did not
// confirm it within its TTL (less a margin, so the stream stops before any other node can be
// granted its slot), or Valkey lost it and re-establishing it would exceed the limit. err
// wraps ErrLost and the reason. If the lease is already lost, f runs at once. f must not
// block; it runs on the renewal's goroutine.
func (l *Lease) OnLost(f func(err error)) {
	l.mu.Lock()
	lost := l.lost
	if lost == nil {
		l.onLost = f
	}
	l.mu.Unlock()
	if lost != nil {
		f(lost)
	}
}

// Err is nil while the lease holds, and then why it was lost.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// lose marks the lease lost with err and calls the OnLost function. Caller holds l.mu.
func (l *Lease) lose(err error) func() {
	if l.lost != nil || l.ended {
		return func() {}
	}
	l.lost = err
	f := l.onLost
	if l.parked { // lingering: no stream to stop
		l.pool.log.Info("lingering lease lost", "err", err)
		return func() {}
	}
	l.pool.cfg.Observer.Lost()
	l.pool.log.Warn("lease lost: stopping its stream", "err", err)
	if f == nil {
		return func() {}
	}
	return func() { f(err) }
}

// Release ends the stream's hold on the lease: it lingers for the user's next stream on this
// node (Config.Linger), or it ends: the renewal stops and the lease leaves Valkey, on a context
// of its own (bounded by Config.OpTimeout) that no request cancellation can cut short. It is
// idempotent and safe for concurrent use.
func (l *Lease) Release() {
	l.once.Do(func() {
		if !l.pool.park(l) {
			l.end(context.Background())
		}
	})
}

// ReleaseNow ends the lease at once, without lingering: for a stream that was cancelled or
// failed, whose slot goes back to every node. Like Release, it is idempotent.
func (l *Lease) ReleaseNow() {
	l.once.Do(func() { l.end(context.Background()) })
}

// end ends the lease; ctx bounds the Valkey call together with Config.OpTimeout and is meant
// to be one that request cancellation does not reach.
func (l *Lease) end(ctx context.Context) {
	p := l.pool
	l.stopRenewal()
	l.mu.Lock()
	local := l.local
	l.mu.Unlock()
	if local {
		p.releaseLocal(l.user)
	} else {
		p.releaseValkey(ctx, l.user, l.id)
	}
	if l.node {
		<-p.node
	}
	p.mu.Lock()
	delete(p.leases, l)
	p.mu.Unlock()
	p.notify(l.user)
}

// margin is how long before Valkey's earliest possible expiry of a lease its holder gives up
// on it: room for the stream's cancellation to reach the provider before another node may be
// granted the slot.
func (p *Pool) margin() time.Duration { return max(p.cfg.TTL/10, 50*time.Millisecond) }

// startRenewal schedules the first renewal of a Valkey lease, TTL/3 after sent (when the
// acquire that Valkey applied was sent).
func (l *Lease) startRenewal(sent time.Time) {
	l.renewing.Add(1)
	l.mu.Lock() // the timer's function may not look at l.timer before it is set
	l.confirmed = sent
	l.timer = l.pool.cfg.Clock.AfterFunc(max(l.pool.cfg.TTL/3-l.pool.cfg.Clock.Since(sent), 0), l.renew)
	l.mu.Unlock()
}

// stopRenewal ends the renewal and waits for one that is running.
func (l *Lease) stopRenewal() {
	l.mu.Lock()
	l.ended = true
	if l.timer != nil && l.timer.Stop() { // it will not run: its count is ours to drop
		l.renewing.Done()
	}
	l.mu.Unlock()
	l.renewing.Wait()
}

// renew runs on the timer: it extends the lease and schedules the next renewal, TTL/3 after
// the last one Valkey applied. A lease Valkey no longer has (it lapsed, or Valkey lost its
// data) is re-established if the limit allows. A failed call is tried again every
// ProbeInterval; a lease not confirmed within its TTL less the margin is lost.
func (l *Lease) renew() {
	defer l.renewing.Done()
	p := l.pool
	l.mu.Lock()
	ended, deadline := l.ended, l.confirmed.Add(p.cfg.TTL-p.margin())
	l.mu.Unlock()
	if ended {
		return
	}
	sent := p.cfg.Clock.Now()
	var ok bool
	err := errUnconfirmed
	if sent.Before(deadline) {
		ok, err = p.renewValkey(l.user, l.id, deadline)
		if err == nil && !ok {
			p.log.Warn("lease gone from Valkey before release: re-establishing it")
			ok, err = p.reestablish(l.user, l.id, l.limit, deadline)
			if err == nil && !ok {
				err = fmt.Errorf("%w: Valkey lost it and the limit is now in use: %w", ErrLost, ErrLimit)
			}
		}
	}
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	var next time.Duration
	switch {
	case err == nil:
		l.confirmed = sent
		next = max(p.cfg.TTL/3-p.cfg.Clock.Since(sent), 0)
	case errors.Is(err, ErrLost):
		call := l.lose(err)
		l.mu.Unlock()
		call()
		return
	case !p.cfg.Clock.Now().Before(deadline):
		call := l.lose(fmt.Errorf("%w: Valkey did not confirm it within its TTL: %w", ErrLost, ErrDegraded))
		l.mu.Unlock()
		call()
		return
	default:
		next = min(p.cfg.ProbeInterval, deadline.Sub(p.cfg.Clock.Now()))
	}
	// The count is at least 1 (this run's), so no Wait can miss the Add.
	l.renewing.Add(1)
	l.timer.Reset(next)
	l.mu.Unlock()
}

// errUnconfirmed: the lease's deadline passed before a renewal could be sent.
var errUnconfirmed = errors.New("lease not confirmed in time")
