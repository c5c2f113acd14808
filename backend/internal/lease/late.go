package lease

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"
)

// ErrNotConnected fails every command of a LateClient until it connects.
var ErrNotConnected = errors.New("valkey: not connected yet")

// noSlot marks a command built for a non-cluster client (valkey-go's cmds.NoSlot). A cluster
// client must not get one: it would index its slot table with it.
const noSlot = uint16(1 << 15)

// Backoff of a LateClient's attempts to connect.
const (
	connectBackoffMin = 250 * time.Millisecond
	connectBackoffMax = 5 * time.Second
)

// LateClient is a valkey.Client for a Valkey that did not answer when the process started.
// Until Connect reaches it, every command fails at once with ErrNotConnected; from then on
// every call goes to the real client. A Pool given one as Config.Late starts degraded, under
// its outage policy, connects it in the background and finds Valkey back once it answers; the
// Pool's neighbours (usage counts, revocations) may share it meanwhile. Its owner closes it.
type LateClient struct {
	opt     valkey.ClientOption
	log     *slog.Logger
	down    valkey.Client // answers while there is no connection: a client that never dials
	real    atomic.Pointer[valkey.Client]
	cluster bool
}

// NewLateClient returns a LateClient for opt with no connection yet; Connect makes one. log
// (nil: none) says when it connects.
func NewLateClient(opt valkey.ClientOption, log *slog.Logger) (*LateClient, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	down, err := valkey.NewClient(valkey.ClientOption{
		InitAddress:       opt.InitAddress[:1],
		DisableCache:      true,
		ForceSingleClient: true,
		DialCtxFn: func(context.Context, string, *net.Dialer, *tls.Config) (net.Conn, error) {
			return nil, ErrNotConnected
		},
	})
	if down == nil {
		return nil, fmt.Errorf("valkey: placeholder client: %w", err)
	}
	return &LateClient{opt: opt, log: log, down: down, cluster: !opt.ForceSingleClient}, nil
}

// Connect tries to create the real client, backing off between attempts, until it succeeds or
// ctx ends. It reports whether it connected. Call it once.
func (c *LateClient) Connect(ctx context.Context) bool {
	start, wait, attempts, log := time.Now(), connectBackoffMin, 0, c.log
	for {
		attempts++
		client, err := valkey.NewClient(c.opt)
		if err == nil {
			c.real.Store(&client)
			log.Info("valkey connected", "attempts", attempts, "after_ms", time.Since(start).Milliseconds())
			return true
		}
		if client != nil {
			client.Close()
		}
		log.Debug("valkey still unreachable", "attempts", attempts, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, connectBackoffMax)
	}
}

// Connected reports whether the real client exists.
func (c *LateClient) Connected() bool { return c.real.Load() != nil }

// cur is the client calls go to now.
func (c *LateClient) cur() valkey.Client {
	if p := c.real.Load(); p != nil {
		return *p
	}
	return c.down
}

// stale reports whether a command was built by the placeholder's builder but would now go to a
// cluster client (a call that straddled connect).
func (c *LateClient) stale(cmd *valkey.Completed) bool {
	return c.cluster && c.Connected() && cmd.Slot()&noSlot != 0
}

func (c *LateClient) B() valkey.Builder { return c.cur().B() }

func (c *LateClient) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	if c.stale(&cmd) {
		return valkey.NewErrorResult(ErrNotConnected)
	}
	return c.cur().Do(ctx, cmd)
}

func (c *LateClient) DoMulti(ctx context.Context, multi ...valkey.Completed) []valkey.ValkeyResult {
	for i := range multi {
		if c.stale(&multi[i]) {
			res := make([]valkey.ValkeyResult, len(multi))
			for j := range res {
				res[j] = valkey.NewErrorResult(ErrNotConnected)
			}
			return res
		}
	}
	return c.cur().DoMulti(ctx, multi...)
}

func (c *LateClient) DoCache(ctx context.Context, cmd valkey.Cacheable, ttl time.Duration) valkey.ValkeyResult {
	if c.cluster && c.Connected() && cmd.Slot()&noSlot != 0 {
		return valkey.NewErrorResult(ErrNotConnected)
	}
	return c.cur().DoCache(ctx, cmd, ttl)
}

func (c *LateClient) DoMultiCache(ctx context.Context, multi ...valkey.CacheableTTL) []valkey.ValkeyResult {
	for i := range multi {
		if c.cluster && c.Connected() && multi[i].Cmd.Slot()&noSlot != 0 {
			res := make([]valkey.ValkeyResult, len(multi))
			for j := range res {
				res[j] = valkey.NewErrorResult(ErrNotConnected)
			}
			return res
		}
	}
	return c.cur().DoMultiCache(ctx, multi...)
}

func (c *LateClient) DoStream(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResultStream {
	if c.stale(&cmd) {
		return valkey.NewErrorResultStream(ErrNotConnected)
	}
	return c.cur().DoStream(ctx, cmd)
}

func (c *LateClient) DoMultiStream(ctx context.Context, multi ...valkey.Completed) valkey.MultiValkeyResultStream {
	for i := range multi {
		if c.stale(&multi[i]) {
			return valkey.NewErrorResultStream(ErrNotConnected)
		}
	}
	return c.cur().DoMultiStream(ctx, multi...)
}

func (c *LateClient) Receive(ctx context.Context, subscribe valkey.Completed, fn func(valkey.PubSubMessage)) error {
	if c.stale(&subscribe) {
		return ErrNotConnected
	}
	return c.cur().Receive(ctx, subscribe, fn)
}

func (c *LateClient) Dedicated(fn func(valkey.DedicatedClient) error) error {
	return c.cur().Dedicated(fn)
}

func (c *LateClient) Dedicate() (valkey.DedicatedClient, func()) { return c.cur().Dedicate() }

func (c *LateClient) Nodes() map[string]valkey.Client { return c.cur().Nodes() }

func (c *LateClient) Mode() valkey.ClientMode { return c.cur().Mode() }

// Close closes the real client, if any, and the placeholder.
func (c *LateClient) Close() {
	if p := c.real.Load(); p != nil {
		(*p).Close()
	}
	c.down.Close()
}
