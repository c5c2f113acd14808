package lease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/valkeytest"
)

// TestLateClient: before Connect every command fails at once with ErrNotConnected; after it,
// commands and scripts reach Valkey, and a command built before connect fails instead of
// reaching a cluster client with the wrong kind of slot.
func TestLateClient(t *testing.T) {
	for _, tt := range []struct {
		name, env string
		cluster   bool
	}{{"single", "CODINGPLAN_TEST_VALKEY", false}, {"cluster", "CODINGPLAN_TEST_VALKEY_CLUSTER", true}} {
		t.Run(tt.name, func(t *testing.T) {
			addr := os.Getenv(tt.env)
			if addr == "" {
				if os.Getenv("CODINGPLAN_REQUIRE_VALKEY") == "1" {
					t.Fatalf("CODINGPLAN_REQUIRE_VALKEY=1 but %s is not set", tt.env)
				}
				t.Skip("no Valkey: set " + tt.env)
			}
			ctx := context.Background()
			opt := valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true, ForceSingleClient: !tt.cluster}
			c, err := NewLateClient(opt, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			key := fmt.Sprintf("test-late-client-%d:{u}:k", time.Now().UnixNano())
			early := c.B().Get().Key(key).Build()
			if err := c.Do(ctx, c.B().Ping().Build()).Error(); !errors.Is(err, ErrNotConnected) {
				t.Fatalf("ping before connect: %v, want ErrNotConnected", err)
			}
			for _, res := range c.DoMulti(ctx, c.B().Ping().Build(), c.B().Ping().Build()) {
				if !errors.Is(res.Error(), ErrNotConnected) {
					t.Fatalf("pipelined ping before connect: %v, want ErrNotConnected", res.Error())
				}
			}
			if !c.Connect(ctx) {
				t.Fatal("connect failed")
			}
			err = c.Do(ctx, early).Error()
			if tt.cluster && !errors.Is(err, ErrNotConnected) {
				t.Errorf("command built before connect: %v, want ErrNotConnected", err)
			}
			if !tt.cluster && !valkey.IsValkeyNil(err) {
				t.Errorf("command built before connect: %v, want nil reply", err)
			}
			script := valkey.NewLuaScript(`redis.call('SET', KEYS[1], ARGV[1], 'EX', 60) return redis.call('GET', KEYS[1])`)
			if got, err := script.Exec(ctx, c, []string{key}, []string{"v"}).ToString(); err != nil || got != "v" {
				t.Errorf("script after connect: %q, %v", got, err)
			}
			if err := c.Do(ctx, c.B().Del().Key(key).Build()).Error(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestLateClientGivesUp: Connect returns false once its context ends.
func TestLateClientGivesUp(t *testing.T) {
	opt := valkey.ClientOption{InitAddress: []string{"127.0.0.1:" + strconv.Itoa(valkeytest.FreePort(t))}, DisableCache: true, ForceSingleClient: true}
	c, err := NewLateClient(opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c.Connect(ctx) {
		t.Fatal("connected to a port where nothing listens")
	}
	if err := c.Do(context.Background(), c.B().Ping().Build()).Error(); !errors.Is(err, ErrNotConnected) {
		t.Errorf("ping: %v, want ErrNotConnected", err)
	}
}

// TestPoolLate: a Pool given a LateClient is degraded from the start and refuses under the
// default outage policy; once a Valkey answers on the address it connects, leaves degraded
// and keeps its leases in that Valkey. Close stops a connection that never succeeds.
func TestPoolLate(t *testing.T) {
	port := valkeytest.FreePort(t)
	opt := valkey.ClientOption{InitAddress: []string{"127.0.0.1:" + strconv.Itoa(port)}, DisableCache: true, ForceSingleClient: true}
	late, err := NewLateClient(opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	obs := &counter{}
	prefix := testPrefix(t)
	p := newPool(t, nil, Config{Prefix: prefix, MaxWait: -1, ProbeInterval: 20 * time.Millisecond, Observer: obs, Late: late})
	if err := p.Ready(); !errors.Is(err, ErrDegraded) {
		t.Fatalf("ready at start: %v, want ErrDegraded", err)
	}
	if obs.valkeyErrors.Load() == 0 {
		t.Error("no Valkey error counted at start")
	}
	_, err = p.Acquire(context.Background(), "u", 2, nil)
	limitError(t, err, ErrDegraded)

	srv := valkeytest.StartOn(t, port)
	eventually(t, 20*time.Second, "the Pool to leave degraded", func() bool { return p.Ready() == nil })
	if !late.Connected() {
		t.Error("ready but not connected")
	}
	l := mustAcquire(t, p, "u", 2)
	if n := zcard(t, dial(t, srv.Addr()), prefix, "u", suffixLeases); n != 1 {
		t.Errorf("leases in Valkey: %d, want 1", n)
	}
	l.ReleaseNow()

	t.Run("never", func(t *testing.T) {
		opt := valkey.ClientOption{InitAddress: []string{"127.0.0.1:" + strconv.Itoa(valkeytest.FreePort(t))}, DisableCache: true, ForceSingleClient: true}
		late, err := NewLateClient(opt, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer late.Close()
		p := New(nil, Config{Late: late}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Fatalf("close: %v", err)
		}
		if late.Connected() {
			t.Error("connected to a port where nothing listens")
		}
	})
}
