// Package conns counts each user's websockets across every backend node, so that the gateway
// can bound them (a leaked token must not hold thousands of idle connections).
//
// Each node keeps the count of its own connections per user in memory, and its share in
// Valkey: one hash per user (see scripts.go) whose field for the node holds its count and an
// expiry. An upgrade costs one script call (count the live shares, add one if under the
// limit) and a close one more (take one off); every TTL/3 the node writes the counts of every
// user it holds, in pipelined batches, which renews their expiry and corrects any count a lost
// reply or an outage left wrong. A node that dies stops refreshing, and its shares stop
// counting within one TTL.
//
// When Valkey is unreachable the Counter admits every connection without the cross-node check
// (the gateway's per-node limit still holds), logs once, counts each such admission for
// metrics, and goes back to Valkey when a refresh succeeds again.
package conns

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

// ErrLimit: the user has the limit's number of connections open across nodes. A *LimitError
// wraps it.
var ErrLimit = errors.New("connection limit reached")

// LimitError says how many connections the user has open and what the limit is.
type LimitError struct {
	Limit int
	Open  int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("conns: %v (%d of %d open)", ErrLimit, e.Open, e.Limit)
}

// Unwrap returns ErrLimit.
func (e *LimitError) Unwrap() error { return ErrLimit }

// Observer receives events for metrics. Implementations must be fast and safe for concurrent
// use.
type Observer interface {
	// ValkeyError: a Valkey call failed.
	ValkeyError()
	// Unchecked: a connection was admitted without the cross-node check (Valkey unreachable).
	Unchecked()
}

// Config tunes a Counter. Zero fields take the defaults in brackets.
type Config struct {
	// Prefix starts every key: <Prefix>:{<user>}:conns. ["codingplan"]
	Prefix string
	// NodeID names this node's share; it must differ between nodes. [random, 16 hex digits]
	NodeID string
	// TTL is how long a node's share counts without a refresh; refreshes run every TTL/3. [60s]
	TTL time.Duration
	// Batch is how many users one pipelined refresh carries. [500]
	Batch int
	// OpTimeout bounds each Valkey call (a refresh batch is one call). [1s]
	OpTimeout time.Duration
	// Observer receives events for metrics. [none]
	Observer Observer
	// Clock stamps the shares' expiries and schedules the refreshes. [the real clock]
	Clock clock.Clock
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "codingplan"
	}
	if c.NodeID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.NodeID = hex.EncodeToString(b[:])
	}
	if c.TTL <= 0 {
		c.TTL = 5 * time.Minute
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = time.Second
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	c.Clock = clock.OrReal(c.Clock)
	return c
}

// Counter counts this node's connections per user, and its share of every user's connections
// in Valkey. It is safe for concurrent use.
type Counter struct {
	client valkey.Client
	cfg    Config
	log    *slog.Logger

	mu   sync.Mutex
	held map[string]held // connections of each user open on this node
	seq  uint64          // changes to held so far

	degraded atomic.Bool // Valkey did not answer: no cross-node check until a refresh succeeds

	quit      chan struct{}
	refreshed chan struct{} // tests: told after each refresh the refresher ran
	stopped   sync.Once
	wg        sync.WaitGroup // the refresher
}

// New returns a Counter on client and starts its refresher; Close stops it.
func New(client valkey.Client, cfg Config, log *slog.Logger) *Counter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Counter{client: client, cfg: cfg.withDefaults(), log: log, held: map[string]held{}, quit: make(chan struct{})}
	c.wg.Go(c.refresher)
	return c
}

// Acquire counts one more connection of user if fewer than limit are open across nodes;
// otherwise it returns a *LimitError. While Valkey is unreachable it admits the connection
// unchecked. Release it when the connection closes.
func (c *Counter) Acquire(ctx context.Context, user string, limit int) error {
	if !c.degraded.Load() {
		ok, open, err := c.acquire(ctx, user, limit)
		switch {
		case err == nil && !ok:
			return &LimitError{Limit: limit, Open: open}
		case err != nil && ctx.Err() != nil:
			return fmt.Errorf("conns: acquire: %w", ctx.Err())
		case err != nil:
			c.failed(err)
		}
	}
	if c.degraded.Load() {
		c.cfg.Observer.Unchecked()
	}
	c.change(user, 1)
	return nil
}

// Release counts one connection of user fewer. Its Valkey call is bounded by OpTimeout; when
// it fails, the next refresh corrects the share, or it expires.
func (c *Counter) Release(user string) {
	c.change(user, -1)
	if c.degraded.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.OpTimeout)
	defer cancel()
	if err := releaseScript.Exec(ctx, c.client, []string{key(c.cfg.Prefix, user)}, c.args()).Error(); err != nil {
		c.failed(err)
	}
}

// held is this node's count of one user's connections, and the change that set it last.
type held struct {
	n   int
	seq uint64
}

// change adds delta to user's count on this node.
func (c *Counter) change(user string, delta int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	h := held{n: c.held[user].n + delta, seq: c.seq}
	if h.n <= 0 {
		delete(c.held, user)
		return
	}
	c.held[user] = h
}

// Open returns how many connections user has open across nodes, from Valkey.
func (c *Counter) Open(ctx context.Context, user string) (int, error) {
	n, err := countScript.Exec(ctx, c.client, []string{key(c.cfg.Prefix, user)}, c.args()).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("conns: count: %w", err)
	}
	return int(n), nil
}

// Close stops the refresher. The shares of connections still open expire within one TTL.
func (c *Counter) Close() {
	c.stopped.Do(func() { close(c.quit) })
	c.wg.Wait()
}

func (c *Counter) acquire(ctx context.Context, user string, limit int) (ok bool, open int, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	reply, err := acquireScript.Exec(ctx, c.client, []string{key(c.cfg.Prefix, user)},
		append(c.args(), strconv.Itoa(limit))).AsIntSlice()
	if err != nil {
		return false, 0, err
	}
	if len(reply) != 2 {
		return false, 0, fmt.Errorf("conns: acquire: unexpected reply %v", reply)
	}
	return reply[0] == 1, int(reply[1]), nil
}

// args are the scripts' first arguments: node id, now and TTL in milliseconds.
func (c *Counter) args() []string {
	return []string{c.cfg.NodeID, strconv.FormatInt(c.cfg.Clock.Now().UnixMilli(), 10),
		strconv.FormatInt(c.cfg.TTL.Milliseconds(), 10)}
}

// failed records a failed Valkey call and stops the cross-node check, logging once per outage.
func (c *Counter) failed(err error) {
	c.cfg.Observer.ValkeyError()
	if !c.degraded.Swap(true) {
		c.log.Warn("valkey unreachable: the cross-node connection limit is not enforced until it answers (the per-node one is)", "err", err)
	}
}

type nopObserver struct{}

func (nopObserver) ValkeyError() {}
func (nopObserver) Unchecked()   {}
