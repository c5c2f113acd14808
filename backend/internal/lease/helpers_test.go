package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/valkeytest"
)

// target is one Valkey deployment the tests run against.
type target struct {
	name   string
	client valkey.Client
}

// dial connects to addr (a single server or a cluster seed) and closes the client at cleanup.
func dial(t testing.TB, addr string) valkey.Client {
	t.Helper()
	return valkeytest.DialAddr(t, addr)
}

// targets returns the single Valkey and the cluster named by the environment. A missing one is
// skipped, or fails the test when CODINGPLAN_REQUIRE_VALKEY=1.
func targets(t *testing.T) []target {
	t.Helper()
	var ts []target
	for _, e := range []struct{ name, env string }{
		{"single", "CODINGPLAN_TEST_VALKEY"},
		{"cluster", "CODINGPLAN_TEST_VALKEY_CLUSTER"},
	} {
		addr := os.Getenv(e.env)
		if addr == "" {
			if os.Getenv("CODINGPLAN_REQUIRE_VALKEY") == "1" {
				t.Fatalf("CODINGPLAN_REQUIRE_VALKEY=1 but %s is not set: the %s subtests would not run", e.env, e.name)
			}
			t.Logf("%s is not set: no %s subtests", e.env, e.name)
			continue
		}
		ts = append(ts, target{e.name, dial(t, addr)})
	}
	if len(ts) == 0 {
		noValkey(t)
	}
	return ts
}

// single returns a client for the single Valkey, or skips.
func single(t testing.TB) valkey.Client {
	t.Helper()
	addr := os.Getenv("CODINGPLAN_TEST_VALKEY")
	if addr == "" {
		noValkey(t)
	}
	return dial(t, addr)
}

func noValkey(t testing.TB) {
	t.Helper()
	if os.Getenv("CODINGPLAN_REQUIRE_VALKEY") == "1" {
		t.Fatal("CODINGPLAN_REQUIRE_VALKEY=1 but CODINGPLAN_TEST_VALKEY(_CLUSTER) is not set")
	}
	t.Skip("no Valkey: set CODINGPLAN_TEST_VALKEY (and CODINGPLAN_TEST_VALKEY_CLUSTER)")
}

// testPrefix is a key prefix no other test uses.
func testPrefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "cptest:" + hex.EncodeToString(b[:])
}

// newPool returns a Pool closed at cleanup. Its recovery window is off unless cfg sets one:
// the test servers may have started moments ago (TestValkeyOutage tests the window).
func newPool(t testing.TB, c valkey.Client, cfg Config) *Pool {
	t.Helper()
	if cfg.RecoveryWindow == 0 {
		cfg.RecoveryWindow = -1
	}
	p := New(c, cfg, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// recv waits for a value on ch for at most timeout.
func recv[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
		panic("unreachable")
	}
}

func mustAcquire(t testing.TB, p *Pool, user string, limit int) *Lease {
	t.Helper()
	l, err := p.Acquire(context.Background(), user, limit, nil)
	if err != nil {
		t.Fatalf("acquire %s (limit %d): %v", user, limit, err)
	}
	return l
}

func inUse(t testing.TB, p *Pool, user string) int {
	t.Helper()
	n, err := p.InUse(context.Background(), user)
	if err != nil {
		t.Fatalf("in use: %v", err)
	}
	return n
}

// zcard counts members of one of user's sorted sets.
func zcard(t testing.TB, c valkey.Client, prefix, user, suffix string) int64 {
	t.Helper()
	n, err := c.Do(context.Background(), c.B().Zcard().Key(key(prefix, user, suffix)).Build()).AsInt64()
	if err != nil {
		t.Fatalf("zcard: %v", err)
	}
	return n
}

// serverMillis is Valkey's clock.
func serverMillis(t testing.TB, c valkey.Client) int64 {
	t.Helper()
	v, err := c.Do(context.Background(), c.B().Time().Build()).AsStrSlice()
	if err != nil || len(v) != 2 {
		t.Fatalf("time: %v %v", v, err)
	}
	s, _ := strconv.ParseInt(v[0], 10, 64)
	us, _ := strconv.ParseInt(v[1], 10, 64)
	return s*1000 + us/1000
}

// scanKeys lists every key under prefix on every node.
func scanKeys(t testing.TB, c valkey.Client, prefix string) []string {
	t.Helper()
	var keys []string
	for _, n := range c.Nodes() {
		var cursor uint64
		for {
			e, err := n.Do(context.Background(), n.B().Scan().Cursor(cursor).Match(prefix+":*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			keys = append(keys, e.Elements...)
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return keys
}

// counter is an Observer that counts.
type counter struct {
	acquired, rejected, valkeyErrors, lost atomic.Int64
}

func (c *counter) Acquired(time.Duration) { c.acquired.Add(1) }
func (c *counter) Rejected()              { c.rejected.Add(1) }
func (c *counter) ValkeyError()           { c.valkeyErrors.Add(1) }
func (c *counter) Lost()                  { c.lost.Add(1) }

// crash stops the lease's renewal without releasing it, as if its node died.
func (l *Lease) crash() {
	l.once.Do(func() {
		l.stopRenewal()
		p := l.pool
		p.mu.Lock()
		delete(p.leases, l)
		p.mu.Unlock()
	})
}

// limitError asserts err is a *LimitError wrapping want and returns it.
func limitError(t testing.TB, err, want error) *LimitError {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want a *LimitError", err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want it to wrap %v", err, want)
	}
	return le
}

// proxy forwards TCP connections to a Valkey server; cut drops them all and refuses new ones
// (a network partition) until restore.
type proxy struct {
	t      testing.TB
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, addr: "127.0.0.1:" + strconv.Itoa(valkeytest.FreePort(t)), target: target}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) restore() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(out, in); out.Close() })
			p.wg.Go(func() { _, _ = io.Copy(in, out); in.Close() })
		}
	})
}

func (p *proxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
