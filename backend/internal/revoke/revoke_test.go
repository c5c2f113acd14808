package revoke

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/valkeytest"
)

const wait = 10 * time.Second

func dial(t *testing.T, addr string) valkey.Client {
	t.Helper()
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestValidate(t *testing.T) {
	ok := Event{Sub: "u1", Kind: KindRevoke, At: 1}
	tests := []struct {
		name string
		edit func(e *Event)
		want bool
	}{
		{"revoke", func(*Event) {}, true},
		{"revoke sid", func(e *Event) { e.SID = "s1" }, true},
		{"plan", func(e *Event) { e.Kind, e.Plan = KindPlan, "max" }, true},
		{"no sub", func(e *Event) { e.Sub = "" }, false},
		{"brace", func(e *Event) { e.Sub = "a}b" }, false},
		{"no at", func(e *Event) { e.At = 0 }, false},
		{"kind", func(e *Event) { e.Kind = "delete" }, false},
		{"plan without name", func(e *Event) { e.Kind = KindPlan }, false},
		{"plan with sid", func(e *Event) { e.Kind, e.Plan, e.SID = KindPlan, "max", "s1" }, false},
		{"revoke with plan", func(e *Event) { e.Plan = "max" }, false},
	}
	for _, tt := range tests {
		e := ok
		tt.edit(&e)
		err := e.Validate()
		if got := err == nil; got != tt.want {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v does not wrap ErrInvalid", tt.name, err)
		}
	}
}

func TestPublishCheck(t *testing.T) {
	v := valkeytest.Start(t)
	c := dial(t, v.Addr())
	ctx := context.Background()
	const prefix = "rv-test"
	chk := NewChecker(c, prefix)
	at := time.UnixMilli(1_800_000_000_000)
	before, after := at.Add(-time.Second), at.Add(time.Second)

	if _, err := Publish(ctx, c, prefix, Event{Sub: "u1", Kind: KindRevoke, At: at.UnixMilli()}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(ctx, c, prefix, Event{Sub: "u2", SID: "fam1", Kind: KindRevoke, At: at.UnixMilli()}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(ctx, c, prefix, Event{Sub: "u3", Kind: KindPlan, Plan: "max", At: at.UnixMilli()}, 0); err != nil {
		t.Fatal(err)
	}
	// An older event published late does not move the time back.
	if _, err := Publish(ctx, c, prefix, Event{Sub: "u1", Kind: KindRevoke, At: before.Add(-time.Hour).UnixMilli()}, 0); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		sub, sid string
		issued   time.Time
		want     Status
	}{
		{"u1", "", before, Status{Revoked: true}},
		{"u1", "", at, Status{Revoked: true}},
		{"u1", "", time.Time{}, Status{Revoked: true}}, // no iat: refused
		{"u1", "other", before, Status{Revoked: true}},
		{"u1", "", after, Status{}},
		{"u2", "fam1", after, Status{Revoked: true}},
		{"u2", "fam2", before, Status{}},
		{"u2", "", before, Status{}},
		{"u3", "", before, Status{Plan: "max"}},
		{"u3", "", after, Status{}},
		{"nobody", "s", before, Status{}},
	}
	for _, tt := range tests {
		got, err := chk.Check(ctx, tt.sub, tt.sid, tt.issued)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("Check(%s, %q, %v) = %+v, want %+v", tt.sub, tt.sid, tt.issued, got, tt.want)
		}
	}

	for _, k := range []string{subjectKey(prefix, "u1"), sidKey(prefix, "u2", "fam1"), planKey(prefix, "u3")} {
		ttl, err := c.Do(ctx, c.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > DefaultTTL.Milliseconds() {
			t.Errorf("PTTL %s = %d, want in (0, %d]", k, ttl, DefaultTTL.Milliseconds())
		}
	}
	if _, err := Publish(ctx, c, prefix, Event{Sub: "u1", Kind: "nope", At: 1}, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid event: got %v, want ErrInvalid", err)
	}
}

func TestCheckUnreachable(t *testing.T) {
	v := valkeytest.Start(t)
	c := dial(t, v.Addr())
	v.Stop(syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := NewChecker(c, "p").Check(ctx, "u1", "", time.Now()); err == nil {
		t.Fatal("Check with Valkey down: no error")
	}
}

// recorder is a Handler that reports what it gets on channels.
type recorder struct {
	events  chan Event
	resyncs chan struct{}
}

func (r *recorder) Handle(_ context.Context, e Event) { r.events <- e }
func (r *recorder) Resync(context.Context)            { r.resyncs <- struct{}{} }

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestWatcher(t *testing.T) {
	v := valkeytest.Start(t)
	c := dial(t, v.Addr())
	const prefix = "rv-watch"
	r := &recorder{events: make(chan Event, 10), resyncs: make(chan struct{}, 10)}
	w := NewWatcher(c, prefix, r, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	recv(t, r.resyncs, "first subscription")
	want := Event{Sub: "u1", SID: "k1", Kind: KindRevoke, At: 42}
	if n, err := Publish(ctx, c, prefix, want, 0); err != nil || n != 1 {
		t.Fatalf("Publish = %d, %v; want 1 subscriber", n, err)
	}
	if got := recv(t, r.events, "event"); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// Not of the contract: ignored.
	if err := c.Do(ctx, c.B().Publish().Channel(Channel(prefix)).Message(`{"sub":"x"}`).Build()).Error(); err != nil {
		t.Fatal(err)
	}

	// Valkey restarts: the watcher subscribes again and resyncs.
	v.Stop(syscall.SIGKILL)
	v.Restart()
	recv(t, r.resyncs, "resubscription")
	want = Event{Sub: "u2", Kind: KindPlan, Plan: "max", At: 43}
	if _, err := Publish(ctx, c, prefix, want, 0); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, r.events, "event after restart"); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestCluster runs against the cluster CODINGPLAN_TEST_VALKEY_CLUSTER names (scripts/valkey.sh
// cluster-start): watchers subscribed through cluster clients, wherever their connection
// landed, get events for accounts in every slot, and Check reads keys on every node.
func TestCluster(t *testing.T) {
	addr := os.Getenv("CODINGPLAN_TEST_VALKEY_CLUSTER")
	if addr == "" {
		if os.Getenv("CODINGPLAN_REQUIRE_VALKEY") == "1" {
			t.Fatal("CODINGPLAN_REQUIRE_VALKEY=1 but CODINGPLAN_TEST_VALKEY_CLUSTER is not set")
		}
		t.Skip("CODINGPLAN_TEST_VALKEY_CLUSTER is not set")
	}
	dialCluster := func() valkey.Client {
		c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if c.Mode() != valkey.ClientModeCluster {
			t.Fatalf("%s is not a cluster", addr)
		}
		return c
	}
	prefix := fmt.Sprintf("rv-cluster-%d", time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	const watchers = 4 // their subscriptions land on random nodes
	recs := make([]*recorder, watchers)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i := range recs {
		recs[i] = &recorder{events: make(chan Event, 100), resyncs: make(chan struct{}, 10)}
		w := NewWatcher(dialCluster(), prefix, recs[i], nil)
		wg.Go(func() { w.Run(ctx) })
		recv(t, recs[i].resyncs, "subscription")
	}
	pub := dialCluster()
	chk := NewChecker(pub, prefix)
	issued := time.UnixMilli(1_800_000_000_000)
	for i := range 30 { // accounts spread over the cluster's slots
		e := Event{Sub: fmt.Sprintf("acct-%d", i), SID: "s", Kind: KindRevoke, At: issued.UnixMilli()}
		if _, err := Publish(ctx, pub, prefix, e, time.Minute); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if got := recv(t, r.events, "event"); got != e {
				t.Fatalf("got %+v, want %+v", got, e)
			}
		}
		st, err := chk.Check(ctx, e.Sub, "s", issued)
		if err != nil || !st.Revoked {
			t.Fatalf("Check(%s) = %+v, %v; want revoked", e.Sub, st, err)
		}
		if st, err := chk.Check(ctx, e.Sub, "other", issued); err != nil || st.Revoked {
			t.Fatalf("Check(%s, other sid) = %+v, %v; want not revoked", e.Sub, st, err)
		}
	}
}
