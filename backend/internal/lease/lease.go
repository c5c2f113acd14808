// Package lease limits how many model streams each user runs at once, across every backend node.
//
// A lease is one member of a per-user sorted set in Valkey whose score is the lease's expiry in
// Valkey's own clock. One Lua script trims expired leases, counts and adds; the Lease renews
// itself every TTL/3 while the stream lives and is removed when it ends, so a crashed node's
// leases lapse within one TTL. A request over the limit waits, for at most Config.MaxWait, in a
// per-user FIFO queue that is also kept in Valkey, so waiters on every node are served in order
// of arrival. A node-wide cap (Config.NodeCap) protects upstream capacity.
//
// Without Valkey (nil client) the same limits hold in this process only. When Valkey is
// configured but unreachable, the Pool keeps serving under a conservative node-local limit
// (Config.FallbackLimit per user, capped at the plan's limit), reports itself degraded through
// Ready, and goes back to Valkey once it answers again.
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
)

// Errors at the package edge.
var (
	// ErrLimit: the user's plan limit was reached and no slot freed within the wait.
	ErrLimit = errors.New("concurrency limit reached")
	// ErrNodeBusy: this node's cap was reached and no node slot freed within the wait.
	ErrNodeBusy = errors.New("node at capacity")
	// ErrClosed: the Pool was closed.
	ErrClosed = errors.New("lease pool closed")
	// ErrDegraded: Valkey is unreachable; leases are limited on this node only (see Ready).
	ErrDegraded = errors.New("valkey unreachable, leases limited per node")
)

// LimitError says why a request was not admitted and when to try again. It wraps ErrLimit, or
// ErrNodeBusy when the node cap was the obstacle.
type LimitError struct {
	Limit      int           // the user's effective limit (the fallback limit while degraded)
	InUse      int           // the user's leases in use when the wait ended
	RetryAfter time.Duration // a hint for the client
	Err        error         // ErrLimit or ErrNodeBusy
}

func (e *LimitError) Error() string {
	if errors.Is(e.Err, ErrNodeBusy) {
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
	// ValkeyError: a Valkey call failed (the Pool may have switched to its node-local limit).
	ValkeyError()
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
	// FallbackLimit is each user's limit on this node while Valkey is unreachable, capped at the
	// plan's limit. A user with connections to k nodes may then run up to k*FallbackLimit
	// streams. [1]
	FallbackLimit int
	// RetryAfter is the retry hint a rejected request gets. [1s]
	RetryAfter time.Duration
	// PollInterval is how often a waiter re-checks Valkey for slots freed on other nodes,
	// with ±25% jitter; releases on this node wake waiters at once. [50ms]
	PollInterval time.Duration
	// OpTimeout bounds each Valkey call; a call that takes longer counts as Valkey unreachable. [1s]
	OpTimeout time.Duration
	// ProbeInterval is how often a degraded Pool pings Valkey to find it back. [1s]
	ProbeInterval time.Duration
	// NodeID starts every lease id of this node. [random, 16 hex digits]
	NodeID string
	// Observer receives events for metrics. [none]
	Observer Observer
}

// Defaults of Config.
const (
	defaultPrefix        = "codingplan"
	defaultTTL           = 15 * time.Second
	defaultMaxWait       = 2 * time.Second
	defaultFallbackLimit = 1
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
	if c.MaxWait < 0 {
		c.MaxWait = 0
	}
	if c.NodeCap < 0 {
		c.NodeCap = 0
	}
	if c.FallbackLimit <= 0 {
		c.FallbackLimit = defaultFallbackLimit
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
	return c
}

type nopObserver struct{}

func (nopObserver) Acquired(time.Duration) {}
func (nopObserver) Rejected()              {}
func (nopObserver) ValkeyError()           {}

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
	closed bool

	health health

	quit   chan struct{}
	prober sync.WaitGroup
}

// New returns a Pool using client, or only this process when client is nil. Close it to release
// this node's leases and stop its background work.
func New(client valkey.Client, cfg Config, log *slog.Logger) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{
		client: client,
		cfg:    cfg.withDefaults(),
		log:    log,
		users:  map[string]*local{},
		leases: map[*Lease]struct{}{},
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
		wg.Go(func() { l.once.Do(func() { l.release(ctx) }) })
	}
	wg.Wait() // each release is bounded by ctx and Config.OpTimeout
	close(p.quit)
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
	local bool // held by the node-local limiter, not in Valkey
	node  bool // holds a node slot

	once sync.Once
	lost chan struct{} // closed when a renewal finds the lease gone from Valkey

	// Renewal of a Valkey lease: a timer whose function renews and re-arms it, rather than a
	// goroutine per lease, so that neither Acquire nor Release waits for a goroutine to be
	// scheduled. renewing counts the renewal that is scheduled or running; Release stops the
	// timer and waits for it.
	mu       sync.Mutex
	timer    *time.Timer // nil for local leases
	ended    bool        // Release began: no renewal is scheduled again
	renewing sync.WaitGroup
}

// Lost is closed when a renewal finds the lease gone from Valkey (it lapsed, or Valkey lost its
// data). The stream may go on; the user's count in Valkey no longer includes it.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Release ends the lease: it stops the renewal and removes the lease from Valkey on a context
// of its own (bounded by Config.OpTimeout) that no request cancellation can cut short. It is
// idempotent and safe for concurrent use.
func (l *Lease) Release() {
	l.once.Do(func() { l.release(context.Background()) })
}

// release ends the lease; ctx bounds the Valkey call together with Config.OpTimeout and is
// meant to be one that request cancellation does not reach.
func (l *Lease) release(ctx context.Context) {
	p := l.pool
	l.stopRenewal()
	if l.local {
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

// startRenewal schedules the first renewal of a Valkey lease, TTL/3 from now.
func (l *Lease) startRenewal() {
	l.renewing.Add(1)
	l.mu.Lock() // the timer's function may not look at l.timer before it is set
	l.timer = time.AfterFunc(l.pool.cfg.TTL/3, l.renew)
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

// renew runs on the timer: it extends the lease and schedules the next renewal, until Release
// or until the lease is found gone. A failed call is tried again at the next tick.
func (l *Lease) renew() {
	defer l.renewing.Done()
	p := l.pool
	start := time.Now()
	l.mu.Lock()
	ended := l.ended
	l.mu.Unlock()
	if ended {
		return
	}
	ok, err := p.renewValkey(l.user, l.id) // counted and logged by renewValkey when it fails
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	if err == nil && !ok {
		p.log.Warn("lease lost before release: it lapsed or Valkey lost its data")
		close(l.lost)
		return
	}
	// The count is at least 1 (this run's), so no Wait can miss the Add. The next run is due
	// TTL/3 after this one started, however long the call took.
	l.renewing.Add(1)
	l.timer.Reset(max(p.cfg.TTL/3-time.Since(start), 0))
}
