package conns

import (
	"context"
	"strconv"

	"github.com/valkey-io/valkey-go"
)

// refresher writes this node's shares every TTL/3 until Close.
func (c *Counter) refresher() {
	t, tick := c.cfg.Clock.NewTicker(c.cfg.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-tick:
			c.Refresh(context.Background())
			if c.refreshed != nil {
				c.refreshed <- struct{}{}
			}
		}
	}
}

// Refresh writes the count of every user this node holds to Valkey, renewing the shares'
// expiry, in pipelined batches of Config.Batch users, each bounded by OpTimeout. After an
// outage, the first Refresh that succeeds brings the cross-node check back. The refresher
// calls it every TTL/3.
func (c *Counter) Refresh(ctx context.Context) {
	if err := c.ping(ctx); err != nil {
		c.failed(err)
		return
	}
	args := c.args()
	users, counts, seq := c.snapshot(nil, 0)
	if err := c.write(ctx, users, counts, args); err != nil {
		c.failed(err)
		return
	}
	// A connection that opened or closed while the counts were on their way may have had its
	// script applied before the count written over it: write once more the counts that changed
	// meanwhile (a user whose last connection closed gets 0, which deletes the share). What
	// stays wrong (a change during this second write) is off by the connections opening or
	// closing at that instant, until the next refresh or the share's expiry.
	users, counts, _ = c.snapshot(users, seq)
	if err := c.write(ctx, users, counts, args); err != nil {
		c.failed(err)
		return
	}
	if c.degraded.Swap(false) {
		c.log.Info("valkey answers again: the cross-node connection limit is enforced")
	}
}

// snapshot returns the users this node holds, their counts, and the change it was taken at.
// Given the users of an earlier snapshot and its change, it returns only those of them whose
// count changed since, 0 for those it holds no more.
func (c *Counter) snapshot(since []string, after uint64) (users []string, counts []int, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if since == nil {
		for u, h := range c.held {
			users, counts = append(users, u), append(counts, h.n)
		}
		return users, counts, c.seq
	}
	for _, u := range since {
		if h, ok := c.held[u]; !ok || h.seq > after {
			users, counts = append(users, u), append(counts, h.n)
		}
	}
	return users, counts, c.seq
}

// write sends the counts in batches of Config.Batch users.
func (c *Counter) write(ctx context.Context, users []string, counts []int, args []string) error {
	for start := 0; start < len(users); start += c.cfg.Batch {
		end := min(start+c.cfg.Batch, len(users))
		if err := c.refreshBatch(ctx, users[start:end], counts[start:end], args); err != nil {
			return err
		}
	}
	return nil
}

// refreshBatch sends one pipeline of refreshScript calls, by EVALSHA; a Valkey node that does
// not have the script yet (NOSCRIPT) gets it by refreshScript.Exec, which falls back to EVAL.
// (Lua.ExecMulti would SCRIPT LOAD first, a command the backend's ACL user need not have.)
func (c *Counter) refreshBatch(ctx context.Context, users []string, counts []int, args []string) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	cmds := make(valkey.Commands, len(users))
	argv := func(i int) []string { return append(args[:3:3], strconv.Itoa(counts[i])) }
	for i, u := range users {
		cmds[i] = c.client.B().Evalsha().Sha1(refreshSHA).Numkeys(1).Key(key(c.cfg.Prefix, u)).Arg(argv(i)...).Build()
	}
	for i, r := range c.client.DoMulti(ctx, cmds...) {
		err := r.Error()
		if ve, ok := valkey.IsValkeyErr(err); ok && ve.IsNoScript() {
			err = refreshScript.Exec(ctx, c.client, []string{key(c.cfg.Prefix, users[i])}, argv(i)).Error()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ping checks that Valkey answers, so that a node holding no connection notices it is back.
func (c *Counter) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	return c.client.Do(ctx, c.client.B().Ping().Build()).Error()
}
