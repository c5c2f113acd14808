package lease

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
)

// BenchmarkAcquireRelease measures lease acquire+release round trips against real Valkey beside
// baselines through the same client: a bare PING; an INCR+DECR pair (the cheapest counting
// semaphore, without TTL, queue or server time); and "script", the acquire script and a ZREM
// without the Pool around them (no renewal timer, no local bookkeeping). Run with
// scripts/bench-lease.sh.
//
//	go test -run '^$' -bench AcquireRelease ./backend/internal/lease/
func BenchmarkAcquireRelease(b *testing.B) {
	type tgt struct{ name, env string }
	ran := false
	for _, tg := range []tgt{{"single", "CODINGPLAN_TEST_VALKEY"}, {"cluster", "CODINGPLAN_TEST_VALKEY_CLUSTER"}} {
		addr := os.Getenv(tg.env)
		if addr == "" {
			continue
		}
		ran = true
		c := dial(b, addr)
		prefix := testPrefix(b)
		ops := []struct {
			name string
			op   func(ctx context.Context, p *Pool, user string) error
		}{
			{"ping", func(ctx context.Context, _ *Pool, _ string) error {
				return c.Do(ctx, c.B().Ping().Build()).Error()
			}},
			{"incrdecr", func(ctx context.Context, _ *Pool, user string) error {
				k := key(prefix, user, "bench")
				if err := c.Do(ctx, c.B().Incr().Key(k).Build()).Error(); err != nil {
					return err
				}
				return c.Do(ctx, c.B().Decr().Key(k).Build()).Error()
			}},
			{"script", func(ctx context.Context, p *Pool, user string) error {
				id := p.newID()
				if _, err := p.tryValkey(ctx, user, id, 1<<30, 0); err != nil {
					return err
				}
				return p.zrem(ctx, user, id)
			}},
			{"lease", func(ctx context.Context, p *Pool, user string) error {
				l, err := p.Acquire(ctx, user, 1<<30, nil)
				if err != nil {
					return err
				}
				l.Release()
				return nil
			}},
		}
		for _, g := range []int{1, 200} {
			for _, op := range ops {
				b.Run(fmt.Sprintf("%s/%s/g=%d", tg.name, op.name, g), func(b *testing.B) {
					p := newPool(b, c, Config{Prefix: prefix, MaxWait: -1})
					benchParallel(b, g, func(ctx context.Context, user string) error { return op.op(ctx, p, user) })
				})
			}
		}
		b.Cleanup(func() { cleanBench(c, prefix) })
	}
	if !ran {
		noValkey(b)
	}
}

// benchParallel runs op from g goroutines (g = 1: the benchmark goroutine), each with its own
// user, and reports operations per second.
func benchParallel(b *testing.B, g int, op func(ctx context.Context, user string) error) {
	ctx := context.Background()
	var next atomic.Int64
	start := time.Now()
	if g == 1 {
		for b.Loop() {
			if err := op(ctx, "u0"); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism((g + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			user := "u" + strconv.FormatInt(next.Add(1), 10)
			for pb.Next() {
				if err := op(ctx, user); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

func cleanBench(c valkey.Client, prefix string) {
	ctx := context.Background()
	for _, n := range c.Nodes() {
		var cursor uint64
		for {
			e, err := n.Do(ctx, n.B().Scan().Cursor(cursor).Match(prefix+":*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				return
			}
			for _, k := range e.Elements {
				n.Do(ctx, n.B().Del().Key(k).Build())
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
}
