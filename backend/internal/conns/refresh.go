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
	c.mu.Lock()
	users := make([]string, 0, len(c.held))
	counts := make([]int, 0, len(c.held))
	for u, n := range c.held {
		users, counts = append(users, u), append(counts, n)
	}
	c.mu.Unlock()
	if err := c.ping(ctx); err != nil {
		c.failed(err)
		return
	}
	args := c.args()
	for start := 0; start < len(users); start += c.cfg.Batch {
		end := min(start+c.cfg.Batch, len(users))
		if err := c.refreshBatch(ctx, users[start:end], counts[start:end], args); err != nil {
			c.failed(err)
			return
		}
	}
	if c.degraded.Swap(false) {
		c.log.Info("valkey answers again: the cross-node connection limit is enforced")
	}
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
