package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/config"
	"github.com/codingplan/codingplan/backend/internal/valkeyconn"
)

// errNotConnected fails every command while serve has no Valkey connection yet.
var errNotConnected = errors.New("valkey: not connected yet")

// noSlot marks a command built for a non-cluster client (valkey-go's cmds.NoSlot). A cluster
// client must not get one: it would index its slot table with it.
const noSlot = uint16(1 << 15)

// Backoff of the attempts to connect to a Valkey that was unreachable at start.
const (
	connectBackoffMin = 250 * time.Millisecond
	connectBackoffMax = 5 * time.Second
)

// valkeyOptions are the client options for cfg's Valkey, with the password read through
// getenv; addrs is empty when none is configured.
func valkeyOptions(cfg *config.Config, getenv func(string) string) (opt valkey.ClientOption, addrs []string, err error) {
	conn := cfg.ValkeyConn()
	if len(conn.Addrs) == 0 {
		return opt, nil, nil
	}
	opt, err = valkeyconn.Options(conn, getenv)
	return opt, conn.Addrs, err
}

// dialValkey connects to the configured Valkey; nil when none is configured.
func dialValkey(cfg *config.Config, getenv func(string) string) (valkey.Client, error) {
	opt, addrs, err := valkeyOptions(cfg, getenv)
	if err != nil || len(addrs) == 0 {
		return nil, err
	}
	client, err := valkey.NewClient(opt)
	if err != nil {
		if client != nil { // a single client comes back even when its first dial failed
			client.Close()
		}
		return nil, fmt.Errorf("valkey %s unreachable (%s): %w", strings.Join(addrs, ","), valkeyconn.Cause(cfg.ValkeyConn(), err), err)
	}
	return client, nil
}

// lateClient is a valkey.Client for a Valkey that did not answer when serve started. Until
// connect reaches it, every command fails at once with errNotConnected, so the lease pool
// serves under its node-local limit and reports degraded; from then on every call goes to the
// real client, and the pool's prober finds Valkey back.
type lateClient struct {
	down    valkey.Client // answers while there is no connection: a client that never dials
	real    atomic.Pointer[valkey.Client]
	cluster bool
}

// newLateClient returns a lateClient with no connection yet; run connect to make one.
func newLateClient(opt valkey.ClientOption) (*lateClient, error) {
	down, err := valkey.NewClient(valkey.ClientOption{
		InitAddress:       opt.InitAddress[:1],
		DisableCache:      true,
		ForceSingleClient: true,
		DialCtxFn: func(context.Context, string, *net.Dialer, *tls.Config) (net.Conn, error) {
			return nil, errNotConnected
		},
	})
	if down == nil {
		return nil, fmt.Errorf("valkey: placeholder client: %w", err)
	}
	return &lateClient{down: down, cluster: !opt.ForceSingleClient}, nil
}

// connect tries to create the real client, backing off between attempts, until it succeeds or
// ctx ends. It reports whether it connected.
func (c *lateClient) connect(ctx context.Context, opt valkey.ClientOption, log *slog.Logger) bool {
	start, wait, attempts := time.Now(), connectBackoffMin, 0
	for {
		attempts++
		client, err := valkey.NewClient(opt)
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

// connected reports whether the real client exists.
func (c *lateClient) connected() bool { return c.real.Load() != nil }

// cur is the client calls go to now.
func (c *lateClient) cur() valkey.Client {
	if p := c.real.Load(); p != nil {
		return *p
	}
	return c.down
}

// stale reports whether a command was built by the placeholder's builder but would now go to a
// cluster client (a call that straddled connect).
func (c *lateClient) stale(cmd *valkey.Completed) bool {
	return c.cluster && c.connected() && cmd.Slot()&noSlot != 0
}

func (c *lateClient) B() valkey.Builder { return c.cur().B() }

func (c *lateClient) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	if c.stale(&cmd) {
		return valkey.NewErrorResult(errNotConnected)
	}
	return c.cur().Do(ctx, cmd)
}

func (c *lateClient) DoMulti(ctx context.Context, multi ...valkey.Completed) []valkey.ValkeyResult {
	for i := range multi {
		if c.stale(&multi[i]) {
			res := make([]valkey.ValkeyResult, len(multi))
			for j := range res {
				res[j] = valkey.NewErrorResult(errNotConnected)
			}
			return res
		}
	}
	return c.cur().DoMulti(ctx, multi...)
}

func (c *lateClient) DoCache(ctx context.Context, cmd valkey.Cacheable, ttl time.Duration) valkey.ValkeyResult {
	if c.cluster && c.connected() && cmd.Slot()&noSlot != 0 {
		return valkey.NewErrorResult(errNotConnected)
	}
	return c.cur().DoCache(ctx, cmd, ttl)
}

func (c *lateClient) DoMultiCache(ctx context.Context, multi ...valkey.CacheableTTL) []valkey.ValkeyResult {
	for i := range multi {
		if c.cluster && c.connected() && multi[i].Cmd.Slot()&noSlot != 0 {
			res := make([]valkey.ValkeyResult, len(multi))
			for j := range res {
				res[j] = valkey.NewErrorResult(errNotConnected)
			}
			return res
		}
	}
	return c.cur().DoMultiCache(ctx, multi...)
}

func (c *lateClient) DoStream(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResultStream {
	if c.stale(&cmd) {
		return valkey.NewErrorResultStream(errNotConnected)
	}
	return c.cur().DoStream(ctx, cmd)
}

func (c *lateClient) DoMultiStream(ctx context.Context, multi ...valkey.Completed) valkey.MultiValkeyResultStream {
	for i := range multi {
		if c.stale(&multi[i]) {
			return valkey.NewErrorResultStream(errNotConnected)
		}
	}
	return c.cur().DoMultiStream(ctx, multi...)
}

func (c *lateClient) Receive(ctx context.Context, subscribe valkey.Completed, fn func(valkey.PubSubMessage)) error {
	if c.stale(&subscribe) {
		return errNotConnected
	}
	return c.cur().Receive(ctx, subscribe, fn)
}

func (c *lateClient) Dedicated(fn func(valkey.DedicatedClient) error) error {
	return c.cur().Dedicated(fn)
}

func (c *lateClient) Dedicate() (valkey.DedicatedClient, func()) { return c.cur().Dedicate() }

func (c *lateClient) Nodes() map[string]valkey.Client { return c.cur().Nodes() }

func (c *lateClient) Mode() valkey.ClientMode { return c.cur().Mode() }

// Close closes the real client, if any, and the placeholder.
func (c *lateClient) Close() {
	if p := c.real.Load(); p != nil {
		(*p).Close()
	}
	c.down.Close()
}
