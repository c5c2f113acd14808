package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/lease"
	wire "github.com/codingplan/codingplan/shared"
)

// realPool returns a lease pool on the test Valkey with a prefix of its own, or skips.
func realPool(t *testing.T, env string, cfg lease.Config) *lease.Pool {
	t.Helper()
	addr := os.Getenv(env)
	if addr == "" {
		if os.Getenv("CODINGPLAN_REQUIRE_VALKEY") == "1" {
			t.Fatalf("CODINGPLAN_REQUIRE_VALKEY=1 but %s is not set", env)
		}
		t.Skipf("no Valkey: set %s", env)
	}
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatalf("valkey %s: %v", addr, err)
	}
	t.Cleanup(client.Close)
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg.Prefix = "test-gateway-" + hex.EncodeToString(b[:])
	p := lease.New(client, cfg, slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// TestRealLeases runs a lite plan (one stream) against the real lease pool: a second request
// waits in line, gets rate_limited, and the count in Valkey returns to zero after a cancel and
// after a disconnect.
func TestRealLeases(t *testing.T) {
	for _, env := range []string{"CODINGPLAN_TEST_VALKEY", "CODINGPLAN_TEST_VALKEY_CLUSTER"} {
		t.Run(env, func(t *testing.T) {
			pool := realPool(t, env, lease.Config{MaxWait: 200 * time.Millisecond, TTL: 3 * time.Second})
			p, started, ended := blocking()
			// The real pool, with each Release reported once it has returned.
			real, released := Pool(pool), make(chan struct{}, 10)
			leases := &fakeLeases{inUse: real.InUse, acquire: func(ctx context.Context, user string, limit int, onQueued func(int)) (Lease, error) {
				l, err := real.Acquire(ctx, user, limit, onQueued)
				if err != nil {
					return nil, err
				}
				return &fakeLease{release: func() { l.Release(); released <- struct{}{} }}, nil
			}}
			h := newHarness(t, setup{deps: Deps{Router: routeTo(p), Leases: leases}})
			lite := func(c *auth.Claims) { c.Plan = "lite" }
			inUse := func() int {
				n, err := pool.InUse(context.Background(), "user-1")
				if err != nil {
					t.Fatal(err)
				}
				return n
			}

			c := h.dial(h.token(lite))
			c.request("c1")
			recv(t, started, "provider call")
			if n := inUse(); n != 1 {
				t.Fatalf("in use after start: %d", n)
			}
			other := h.dial(h.token(lite))
			if other.hello.Plan.InUse != 1 || other.hello.Plan.Concurrency != 1 {
				t.Errorf("hello plan: %+v", other.hello.Plan)
			}
			other.request("c2")
			if q := other.expect(wire.TypeQueued); q.ID != "c2" || q.Position != 1 {
				t.Errorf("queued: %+v", q)
			}
			f := other.expectError("c2", wire.CodeRateLimited)
			if f.RetryAfterMS <= 0 || f.Plan == nil || f.Plan.Concurrency != 1 || f.Plan.InUse != 1 {
				t.Errorf("rate_limited: retry %d plan %+v", f.RetryAfterMS, f.Plan)
			}

			c.send(wire.ClientFrame{Type: wire.TypeCancel, ID: "c1"})
			recv(t, ended, "provider context end")
			recv(t, released, "release after cancel")
			c.expectError("c1", wire.CodeCanceled)
			if n := inUse(); n != 0 {
				t.Errorf("in use after cancel: %d", n)
			}

			other.request("c3")
			recv(t, started, "provider call")
			other.c.NetConn().Close()
			recv(t, ended, "provider context end")
			recv(t, released, "release after disconnect")
			if n := inUse(); n != 0 {
				t.Errorf("in use after disconnect: %d", n)
			}
		})
	}
}
