package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
)

func TestKey(t *testing.T) {
	tests := []struct {
		prefix, user, suffix, want string
	}{
		{"codingplan", "alice", suffixLeases, "codingplan:{alice}:leases"},
		{"p", "u-1", suffixQueue, "p:{u-1}:queue"},
		{"p", "u-1", suffixQueueExp, "p:{u-1}:qexp"},
	}
	for _, tt := range tests {
		if got := key(tt.prefix, tt.user, tt.suffix); got != tt.want {
			t.Errorf("key(%q, %q, %q) = %q, want %q", tt.prefix, tt.user, tt.suffix, got, tt.want)
		}
	}
}

// TestLimitAcrossPools: two nodes sharing Valkey together never exceed a user's limit.
func TestLimitAcrossPools(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			cfg := Config{Prefix: testPrefix(t), MaxWait: -1, RetryAfter: 700 * time.Millisecond}
			a, b := newPool(t, tg.client, cfg), newPool(t, tg.client, cfg)
			l1 := mustAcquire(t, a, "u", 2)
			l2 := mustAcquire(t, b, "u", 2)
			for _, p := range []*Pool{a, b} {
				if got := inUse(t, p, "u"); got != 2 {
					t.Errorf("in use = %d, want 2", got)
				}
				_, err := p.Acquire(context.Background(), "u", 2, nil)
				le := limitError(t, err, ErrLimit)
				if got, want := *le, (LimitError{Limit: 2, InUse: 2, RetryAfter: 700 * time.Millisecond, Err: ErrLimit}); got != want {
					t.Errorf("limit error = %+v, want %+v", got, want)
				}
			}
			// Another user is not affected.
			other := mustAcquire(t, b, "v", 1)
			other.Release()
			l1.Release()
			l1.Release() // idempotent
			if got := inUse(t, b, "u"); got != 1 {
				t.Errorf("in use after release = %d, want 1", got)
			}
			l3 := mustAcquire(t, b, "u", 2)
			l2.Release()
			l3.Release()
			if got := inUse(t, a, "u"); got != 0 {
				t.Errorf("in use at end = %d, want 0", got)
			}
		})
	}
}

// TestStorm: many goroutines on two nodes acquire and release; the holders never exceed the limit.
func TestStorm(t *testing.T) {
	const (
		limit      = 3
		goroutines = 60
		rounds     = 5
	)
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			cfg := Config{Prefix: testPrefix(t), MaxWait: 30 * time.Second, PollInterval: 5 * time.Millisecond}
			pools := []*Pool{newPool(t, tg.client, cfg), newPool(t, tg.client, cfg)}
			var holders, peak, granted atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, goroutines)
			for g := range goroutines {
				wg.Go(func() {
					p := pools[g%len(pools)]
					for range rounds {
						l, err := p.Acquire(context.Background(), "storm", limit, nil)
						if err != nil {
							errs <- err
							return
						}
						n := holders.Add(1)
						for {
							old := peak.Load()
							if n <= old || peak.CompareAndSwap(old, n) {
								break
							}
						}
						granted.Add(1)
						// Hold the lease for one Valkey round trip.
						_ = tg.client.Do(context.Background(), tg.client.B().Ping().Build()).Error()
						holders.Add(-1)
						l.Release()
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("acquire: %v", err)
			}
			if got := peak.Load(); got > limit || got < 1 {
				t.Errorf("peak holders = %d, want 1..%d", got, limit)
			}
			if got, want := granted.Load(), int64(goroutines*rounds); got != want {
				t.Errorf("granted = %d, want %d", got, want)
			}
			if got := inUse(t, pools[0], "storm"); got != 0 {
				t.Errorf("in use at end = %d, want 0", got)
			}
			if got := zcard(t, tg.client, cfg.Prefix, "storm", suffixQueue); got != 0 {
				t.Errorf("queue at end = %d, want 0", got)
			}
		})
	}
}

// TestFIFO: waiters on two nodes are admitted in arrival order and told their moving positions.
func TestFIFO(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			cfg := Config{Prefix: testPrefix(t), MaxWait: 20 * time.Second}
			pools := []*Pool{newPool(t, tg.client, cfg), newPool(t, tg.client, cfg)}
			holder := mustAcquire(t, pools[0], "f", 1)

			type result struct {
				name string
				l    *Lease
				err  error
			}
			admitted := make(chan result, 3)
			var mu sync.Mutex
			positions := map[string][]int{}
			names := []string{"A", "B", "C"}
			var wg sync.WaitGroup
			for i, name := range names {
				queued := make(chan struct{})
				var once sync.Once
				p := pools[i%2] // A and C on node 0, B on node 1
				wg.Go(func() {
					l, err := p.Acquire(context.Background(), "f", 1, func(pos int) {
						mu.Lock()
						positions[name] = append(positions[name], pos)
						mu.Unlock()
						once.Do(func() { close(queued) })
					})
					admitted <- result{name, l, err}
				})
				recv(t, queued, 5*time.Second, name+" to queue")
			}
			var order []string
			prev := holder
			for i := range names {
				prev.Release()
				r := recv(t, admitted, 5*time.Second, "an admission")
				if r.err != nil {
					t.Fatalf("%s: %v", r.name, r.err)
				}
				order = append(order, r.name)
				prev = r.l
				// Before the next release, every waiter left learns it moved up.
				for j, name := range names[i+1:] {
					eventually(t, 5*time.Second, name+" to move up", func() bool {
						mu.Lock()
						defer mu.Unlock()
						ps := positions[name]
						return ps[len(ps)-1] == j+1
					})
				}
			}
			prev.Release()
			wg.Wait()
			if got, want := fmt.Sprint(order), "[A B C]"; got != want {
				t.Errorf("admission order = %s, want %s", got, want)
			}
			want := map[string]string{"A": "[1]", "B": "[2 1]", "C": "[3 2 1]"}
			for _, name := range names {
				if got := fmt.Sprint(positions[name]); got != want[name] {
					t.Errorf("positions of %s = %s, want %s", name, got, want[name])
				}
			}
		})
	}
}

// TestTimeout: a waiter that gets no slot within MaxWait gets a LimitError and leaves the queue.
func TestTimeout(t *testing.T) {
	type mode struct {
		name   string
		client valkey.Client
	}
	modes := []mode{{"local", nil}}
	for _, tg := range targets(t) {
		modes = append(modes, mode(tg))
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			obs := &counter{}
			cfg := Config{Prefix: testPrefix(t), MaxWait: 150 * time.Millisecond, RetryAfter: 2 * time.Second, Observer: obs}
			p := newPool(t, m.client, cfg)
			holders := []*Lease{mustAcquire(t, p, "t", 2), mustAcquire(t, p, "t", 2)}
			var queued []int
			start := time.Now()
			_, err := p.Acquire(context.Background(), "t", 2, func(pos int) { queued = append(queued, pos) })
			waited := time.Since(start)
			le := limitError(t, err, ErrLimit)
			if got, want := *le, (LimitError{Limit: 2, InUse: 2, RetryAfter: 2 * time.Second, Err: ErrLimit}); got != want {
				t.Errorf("limit error = %+v, want %+v", got, want)
			}
			if waited < cfg.MaxWait {
				t.Errorf("gave up after %v, want at least MaxWait %v", waited, cfg.MaxWait)
			}
			if got := fmt.Sprint(queued); got != "[1]" {
				t.Errorf("positions = %s, want [1]", got)
			}
			if got, want := [2]int64{obs.acquired.Load(), obs.rejected.Load()}, [2]int64{2, 1}; got != want {
				t.Errorf("observed acquired, rejected = %v, want %v", got, want)
			}
			if m.client != nil {
				if got := zcard(t, m.client, cfg.Prefix, "t", suffixQueue); got != 0 {
					t.Errorf("queue after timeout = %d, want 0", got)
				}
			}
			for _, l := range holders {
				l.Release()
			}
			p.mu.Lock()
			left := len(p.users)
			p.mu.Unlock()
			if left != 0 {
				t.Errorf("local user entries at end = %d, want 0", left)
			}
		})
	}
}

// TestCancelWhileQueued: cancelling a waiter takes its ticket out of the queue before Acquire returns.
func TestCancelWhileQueued(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			cfg := Config{Prefix: testPrefix(t), MaxWait: 20 * time.Second}
			p := newPool(t, tg.client, cfg)
			holder := mustAcquire(t, p, "c", 1)
			defer holder.Release()
			ctx, cancel := context.WithCancel(context.Background())
			queued := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				_, err := p.Acquire(ctx, "c", 1, func(int) { close(queued) })
				done <- err
			}()
			recv(t, queued, 5*time.Second, "the waiter to queue")
			if got := zcard(t, tg.client, cfg.Prefix, "c", suffixQueue); got != 1 {
				t.Fatalf("queue while waiting = %d, want 1", got)
			}
			cancel()
			err := recv(t, done, 2*time.Second, "Acquire to return after cancel")
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			for _, s := range []string{suffixQueue, suffixQueueExp} {
				if got := zcard(t, tg.client, cfg.Prefix, "c", s); got != 0 {
					t.Errorf("%s after cancel = %d, want 0", s, got)
				}
			}
		})
	}
}

// TestRenewal: a lease held for several TTLs stays counted; released, it is gone.
func TestRenewal(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			const ttl = 300 * time.Millisecond
			cfg := Config{Prefix: testPrefix(t), TTL: ttl, MaxWait: -1}
			p := newPool(t, tg.client, cfg)
			l := mustAcquire(t, p, "r", 1)
			firstExpiry := serverMillis(t, tg.client) + ttl.Milliseconds()
			eventually(t, 10*time.Second, "server time to pass three TTLs", func() bool {
				return serverMillis(t, tg.client) > firstExpiry+2*ttl.Milliseconds()
			})
			if got := inUse(t, p, "r"); got != 1 {
				t.Errorf("in use after 3 TTLs = %d, want 1", got)
			}
			if _, err := p.Acquire(context.Background(), "r", 1, nil); !errors.Is(err, ErrLimit) {
				t.Errorf("second acquire: err = %v, want ErrLimit", err)
			}
			if err := l.Err(); err != nil {
				t.Errorf("lease lost: %v", err)
			}
			l.Release()
			if got := inUse(t, p, "r"); got != 0 {
				t.Errorf("in use after release = %d, want 0", got)
			}
		})
	}
}

// TestLost: a lease removed from Valkey behind its holder's back is re-established by the next
// renewal while the limit allows; when another node took the slot meanwhile, the lease is
// lost and its holder told why. Release still works.
func TestLost(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			cfg := Config{Prefix: testPrefix(t), TTL: 300 * time.Millisecond, MaxWait: -1}
			p := newPool(t, tg.client, cfg)
			other := newPool(t, tg.client, cfg)
			k := key(cfg.Prefix, "lost", suffixLeases)
			del := func() {
				if err := tg.client.Do(context.Background(), tg.client.B().Del().Key(k).Build()).Error(); err != nil {
					t.Fatalf("del %s: %v", k, err)
				}
			}

			l := mustAcquire(t, p, "lost", 1)
			lost := make(chan error, 1)
			l.OnLost(func(err error) { lost <- err })
			del()
			eventually(t, 10*time.Second, "the lease to be re-established", func() bool {
				return zcard(t, tg.client, cfg.Prefix, "lost", suffixLeases) == 1
			})
			if err := l.Err(); err != nil {
				t.Fatalf("lease lost although the limit had room: %v", err)
			}

			del()
			taken := mustAcquire(t, other, "lost", 1)
			err := recv(t, lost, 10*time.Second, "the lease to be lost")
			if !errors.Is(err, ErrLost) || !errors.Is(err, ErrLimit) {
				t.Errorf("lost with %v, want ErrLost and ErrLimit", err)
			}
			if got := l.Err(); got != err {
				t.Errorf("Err() = %v, want %v", got, err)
			}
			l.Release()
			if got := inUse(t, p, "lost"); got != 1 {
				t.Errorf("in use after the lost lease's release = %d, want 1 (the other node's)", got)
			}
			taken.Release()
		})
	}
}

// TestReleaseAfterCancel: the stream's context is gone when the lease is released; it still goes.
func TestReleaseAfterCancel(t *testing.T) {
	c := single(t)
	cfg := Config{Prefix: testPrefix(t), MaxWait: -1}
	a, b := newPool(t, c, cfg), newPool(t, c, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	l, err := a.Acquire(ctx, "x", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	l.Release()
	if got := inUse(t, b, "x"); got != 0 {
		t.Errorf("in use = %d, want 0", got)
	}
	mustAcquire(t, b, "x", 1).Release()
}

// TestClose: Close releases every lease of the node and refuses new ones.
func TestClose(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			cfg := Config{Prefix: testPrefix(t), MaxWait: -1}
			other := newPool(t, tg.client, cfg)
			p := New(tg.client, cfg, nil)
			var held []*Lease
			for _, u := range []string{"a", "a", "b"} {
				held = append(held, mustAcquire(t, p, u, 5))
			}
			if err := p.Close(context.Background()); err != nil {
				t.Fatalf("close: %v", err)
			}
			for _, u := range []string{"a", "b"} {
				if got := inUse(t, other, u); got != 0 {
					t.Errorf("in use of %s after close = %d, want 0", u, got)
				}
			}
			if _, err := p.Acquire(context.Background(), "a", 5, nil); !errors.Is(err, ErrClosed) {
				t.Errorf("acquire after close: err = %v, want ErrClosed", err)
			}
			for _, l := range held {
				l.Release() // no-op
			}
			if err := p.Close(context.Background()); err != nil {
				t.Errorf("second close: %v", err)
			}
		})
	}
}

// TestCrashedNode: leases and queue tickets of a node that dies lapse on their own.
func TestCrashedNode(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			const ttl = 300 * time.Millisecond
			cfg := Config{Prefix: testPrefix(t), TTL: ttl, MaxWait: -1}
			crashed, live := New(tg.client, cfg, nil), newPool(t, tg.client, cfg)
			l := mustAcquire(t, crashed, "k", 1)
			l.crash()
			close(crashed.quit) // stop its prober; it never releases anything
			crashed.prober.Wait()

			// A waiter ticket of the dead node at the head of the queue.
			ghost, err := live.tryValkey(context.Background(), "k", "ghost", 1, 400*time.Millisecond)
			if err != nil || ghost.position != 1 {
				t.Fatalf("ghost ticket: %+v, %v", ghost, err)
			}
			if _, err := live.Acquire(context.Background(), "k", 1, nil); !errors.Is(err, ErrLimit) {
				t.Fatalf("acquire while the dead lease lives: err = %v, want ErrLimit", err)
			}
			eventually(t, 5*time.Second, "the dead node's lease and ticket to lapse", func() bool {
				l, err := live.Acquire(context.Background(), "k", 1, nil)
				if err != nil {
					return false
				}
				l.Release()
				return true
			})
			if got := zcard(t, tg.client, cfg.Prefix, "k", suffixQueue); got != 0 {
				t.Errorf("queue = %d, want 0", got)
			}
		})
	}
}

// TestEveryKeyHasTTL: leases, queues and their bookkeeping all expire.
func TestEveryKeyHasTTL(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			cfg := Config{Prefix: testPrefix(t), MaxWait: 20 * time.Second}
			p := newPool(t, tg.client, cfg)
			users := []string{"a", "b", "c"}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for _, u := range users {
				holder := mustAcquire(t, p, u, 1)
				defer holder.Release()
				queued := make(chan struct{})
				wg.Go(func() {
					var once sync.Once
					_, _ = p.Acquire(ctx, u, 1, func(int) { once.Do(func() { close(queued) }) })
				})
				recv(t, queued, 5*time.Second, "a waiter to queue")
			}
			keys := scanKeys(t, tg.client, cfg.Prefix)
			if got, want := len(keys), 3*len(users); got != want {
				t.Errorf("keys = %d (%v), want %d", got, keys, want)
			}
			for _, k := range keys {
				ms, err := tg.client.Do(context.Background(), tg.client.B().Pttl().Key(k).Build()).AsInt64()
				if err != nil {
					t.Fatal(err)
				}
				if limit := (cfg.MaxWait + 5*time.Second).Milliseconds() + defaultTTL.Milliseconds(); ms <= 0 || ms > limit {
					t.Errorf("PTTL %s = %d ms, want 1..%d", k, ms, limit)
				}
			}
			cancel()
			wg.Wait()
		})
	}
}

// TestNodeCap: the node-wide cap holds across users and is waited for in the same bounded way.
func TestNodeCap(t *testing.T) {
	p := newPool(t, nil, Config{NodeCap: 2, MaxWait: 100 * time.Millisecond})
	a := mustAcquire(t, p, "a", 5)
	b := mustAcquire(t, p, "b", 5)
	_, err := p.Acquire(context.Background(), "c", 5, nil)
	le := limitError(t, err, ErrNodeBusy)
	if errors.Is(err, ErrLimit) {
		t.Errorf("node busy error %v also wraps ErrLimit", err)
	}
	if got, want := *le, (LimitError{Limit: 5, InUse: 0, RetryAfter: time.Second, Err: ErrNodeBusy}); got != want {
		t.Errorf("limit error = %+v, want %+v", got, want)
	}
	if got := inUse(t, p, "c"); got != 0 {
		t.Errorf("user slot of the refused request not released: in use = %d", got)
	}
	// A waiter gets the node slot a release frees.
	p2 := newPool(t, nil, Config{NodeCap: 1, MaxWait: 10 * time.Second})
	hold := mustAcquire(t, p2, "a", 5)
	got := make(chan error, 1)
	go func() {
		l, err := p2.Acquire(context.Background(), "b", 5, nil)
		if err == nil {
			l.Release()
		}
		got <- err
	}()
	// Wait until the waiter holds its user slot (it then waits for the node slot).
	eventually(t, 5*time.Second, "the waiter to take its user slot", func() bool { return inUse(t, p2, "b") == 1 })
	hold.Release()
	if err := recv(t, got, 5*time.Second, "the waiter"); err != nil {
		t.Errorf("waiter: %v", err)
	}
	a.Release()
	b.Release()
}

// TestLocalOnly: without Valkey the limits and the FIFO queue hold in the process.
func TestLocalOnly(t *testing.T) {
	p := newPool(t, nil, Config{MaxWait: 10 * time.Second})
	if err := p.Ready(); err != nil {
		t.Errorf("ready: %v", err)
	}
	holder := mustAcquire(t, p, "u", 1)
	admitted := make(chan string, 2)
	var wg sync.WaitGroup
	var leases sync.Map
	for _, name := range []string{"A", "B"} {
		queued := make(chan struct{})
		wg.Go(func() {
			var once sync.Once
			l, err := p.Acquire(context.Background(), "u", 1, func(int) { once.Do(func() { close(queued) }) })
			if err != nil {
				t.Errorf("%s: %v", name, err)
				admitted <- ""
				return
			}
			leases.Store(name, l)
			admitted <- name
		})
		recv(t, queued, 5*time.Second, name+" to queue")
	}
	holder.Release()
	first := recv(t, admitted, 5*time.Second, "first admission")
	if l, ok := leases.Load(first); ok {
		l.(*Lease).Release()
	}
	second := recv(t, admitted, 5*time.Second, "second admission")
	if l, ok := leases.Load(second); ok {
		l.(*Lease).Release()
	}
	wg.Wait()
	if got := first + second; got != "AB" {
		t.Errorf("order = %q, want AB", got)
	}
	if _, err := p.Acquire(context.Background(), "u", 0, nil); !errors.Is(err, ErrLimit) {
		t.Errorf("limit 0: err = %v, want ErrLimit", err)
	}
}
