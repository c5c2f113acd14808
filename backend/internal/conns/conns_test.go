package conns

import (
	"errors"
	"maps"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	"github.com/codingplan/codingplan/shared/clock/clocktest"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// prefix is a key prefix of the test's own.
func prefix() string { return valkeytest.Prefix("test-conns") }

// each runs f against the single Valkey and the cluster.
func each(t *testing.T, f func(t *testing.T, client valkey.Client)) {
	for _, env := range []string{valkeytest.EnvSingle, valkeytest.EnvCluster} {
		t.Run(env, func(t *testing.T) { f(t, valkeytest.Dial(t, env)) })
	}
}

// counting is an Observer that counts.
type counting struct{ errs, unchecked atomic.Int64 }

func (o *counting) ValkeyError() { o.errs.Add(1) }
func (o *counting) Unchecked()   { o.unchecked.Add(1) }

// node returns a Counter named id on client, closed at cleanup.
func node(t *testing.T, client valkey.Client, cfg Config, id string) *Counter {
	t.Helper()
	cfg.NodeID = id
	c := New(client, cfg, nil)
	t.Cleanup(c.Close)
	return c
}

// acquire calls Acquire and says whether it admitted; other errors fail the test.
func acquire(t *testing.T, c *Counter, user string, limit int) bool {
	t.Helper()
	err := c.Acquire(t.Context(), user, limit)
	var le *LimitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &le) && errors.Is(err, ErrLimit):
		if le.Limit != limit || le.Open < limit {
			t.Errorf("refusal says %d of %d open, want at least %d of %d", le.Open, le.Limit, limit, limit)
		}
		return false
	}
	t.Fatalf("acquire: %v", err)
	return false
}

func open(t *testing.T, c *Counter, user string) int {
	t.Helper()
	n, err := c.Open(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAcrossNodes: two nodes share one user's limit; a release on one frees a slot for the
// other; other users are not affected.
func TestAcrossNodes(t *testing.T) { each(t, testAcrossNodes) }

func testAcrossNodes(t *testing.T, client valkey.Client) {
	ck := clocktest.New(t0)
	cfg := Config{Prefix: prefix(), TTL: time.Minute, Clock: ck}
	a, b := node(t, client, cfg, "a"), node(t, client, cfg, "b")
	steps := []struct {
		on   *Counter
		user string
		want bool
	}{
		{a, "u", true}, {b, "u", true}, {a, "u", true}, // 3 of 3
		{b, "u", false}, {a, "u", false}, // full on both nodes
		{b, "v", true}, // another user
	}
	for i, s := range steps {
		if got := acquire(t, s.on, s.user, 3); got != s.want {
			t.Fatalf("step %d: admitted %v, want %v", i, got, s.want)
		}
	}
	if got := open(t, a, "u"); got != 3 {
		t.Errorf("open = %d, want 3", got)
	}
	a.Release("u")
	if !acquire(t, b, "u", 3) {
		t.Error("a release on node a did not free a slot for node b")
	}
	for _, c := range []*Counter{a, b, b} {
		c.Release("u")
	}
	b.Release("v")
	if got := open(t, a, "u"); got != 0 {
		t.Errorf("open after every release = %d, want 0", got)
	}
	if n, err := client.Do(t.Context(), client.B().Exists().Key(key(cfg.Prefix, "u")).Build()).AsInt64(); err != nil || n != 0 {
		t.Errorf("the user's key is still there (%d, %v)", n, err)
	}
}

// TestExpiry: a node that stops refreshing (it died) stops counting within one TTL, while a
// node that refreshes keeps its share, and Refresh corrects a share that went wrong.
func TestExpiry(t *testing.T) { each(t, testExpiry) }

func testExpiry(t *testing.T, client valkey.Client) {
	ck := clocktest.New(t0)
	const ttl = time.Minute
	cfg := Config{Prefix: prefix(), TTL: ttl, Clock: ck}
	dead, live := node(t, client, cfg, "dead"), node(t, client, cfg, "live")
	for range 2 {
		acquire(t, dead, "u", 4)
		acquire(t, live, "u", 4)
	}
	if acquire(t, live, "u", 4) {
		t.Fatal("admitted over the limit")
	}
	if ms, err := client.Do(t.Context(), client.B().Pttl().Key(key(cfg.Prefix, "u")).Build()).AsInt64(); err != nil || ms <= 0 || ms > 2*ttl.Milliseconds() {
		t.Errorf("the key's TTL is %dms (%v), want at most two TTLs", ms, err)
	}
	ck.Add(ttl / 2)
	live.Refresh(t.Context()) // the dead node's refresher never runs: its ticker never fires
	if got := open(t, live, "u"); got != 4 {
		t.Fatalf("open half a TTL on = %d, want 4", got)
	}
	ck.Add(ttl/2 + time.Millisecond)
	if got := open(t, live, "u"); got != 2 {
		t.Fatalf("open after the dead node's TTL = %d, want 2 (the live node's)", got)
	}
	if !acquire(t, live, "u", 4) || !acquire(t, live, "u", 4) || acquire(t, live, "u", 4) {
		t.Error("the dead node's slots did not come back, or too many did")
	}

	// A share that went wrong (here: set by hand) is what the node holds after a refresh.
	k := key(cfg.Prefix, "u")
	if err := client.Do(t.Context(), client.B().Hset().Key(k).FieldValue().FieldValue("live", "9 99999999999999").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	live.Refresh(t.Context())
	if got := open(t, live, "u"); got != 4 {
		t.Errorf("open after a refresh = %d, want 4", got)
	}
}

// TestRefresher: the refresher runs every TTL/3 on the injected clock.
func TestRefresher(t *testing.T) {
	client := valkeytest.Dial(t, valkeytest.EnvSingle)
	ck := clocktest.New(t0)
	cfg := Config{Prefix: prefix(), TTL: 3 * time.Second, Clock: ck}
	c := node(t, client, cfg, "n")
	acquire(t, c, "u", 5)
	c.refreshed = make(chan struct{}) // set before the tick: Fire's send orders it before the read
	tick := ck.Await(t, time.Second)
	ck.Add(2 * time.Second)
	tick.Fire()
	select {
	case <-c.refreshed:
	case <-time.After(10 * time.Second):
		t.Fatal("the refresher did not run")
	}
	ck.Add(2 * time.Second) // past the first expiry, not the refreshed one
	if got := open(t, c, "u"); got != 1 {
		t.Errorf("open after the refresher ran = %d, want 1", got)
	}
}

// TestOutage: with Valkey gone, connections are admitted unchecked (counted), and once it
// answers again a refresh restores the node's counts and the check.
func TestOutage(t *testing.T) {
	srv := valkeytest.Start(t)
	client := valkeytest.DialAddr(t, srv.Addr())
	ck := clocktest.New(t0)
	obs := &counting{}
	cfg := Config{Prefix: prefix(), TTL: time.Minute, Clock: ck, Observer: obs, OpTimeout: 500 * time.Millisecond}
	c := node(t, client, cfg, "n")
	if !acquire(t, c, "u", 2) {
		t.Fatal("refused")
	}
	srv.Stop(syscall.SIGKILL)
	for i := range 3 {
		if !acquire(t, c, "u", 2) {
			t.Fatalf("acquire %d during the outage refused", i)
		}
	}
	if got := obs.unchecked.Load(); got != 3 {
		t.Errorf("%d unchecked admissions counted, want 3", got)
	}
	if obs.errs.Load() == 0 {
		t.Error("no Valkey error counted")
	}
	c.Release("u")
	c.Refresh(t.Context()) // still down: stays degraded
	srv.Restart()
	// The client may find its old connection dead on the first call after the restart: the
	// refresh after that one finds Valkey back.
	for i := 0; i < 3 && c.degraded.Load(); i++ {
		c.Refresh(t.Context())
	}
	if got := open(t, c, "u"); got != 3 {
		t.Errorf("open after the outage = %d, want 3 (the node's count)", got)
	}
	if acquire(t, c, "u", 3) {
		t.Error("the check is not back after a successful refresh")
	}
	if got := obs.unchecked.Load(); got != 3 {
		t.Errorf("%d unchecked admissions, want still 3", got)
	}
}

// TestSkew: a node whose clock is behind by less than 2/3 of the TTL keeps the other's live
// share counted between refreshes.
func TestSkew(t *testing.T) {
	client := valkeytest.Dial(t, valkeytest.EnvSingle)
	ahead, behind := clocktest.New(t0.Add(30*time.Second)), clocktest.New(t0)
	p := prefix()
	a := node(t, client, Config{Prefix: p, TTL: time.Minute, Clock: ahead}, "ahead")
	b := node(t, client, Config{Prefix: p, TTL: time.Minute, Clock: behind}, "behind")
	acquire(t, b, "u", 2)
	ahead.Add(20 * time.Second) // one refresh period later, b's share is still counted
	if !acquire(t, a, "u", 2) || acquire(t, a, "u", 2) {
		t.Error("the node ahead miscounted the other's share")
	}
}

// TestSnapshot: the second pass of a refresh takes the users whose count changed after the
// first, with 0 for those whose last connection closed, and no others.
func TestSnapshot(t *testing.T) {
	c := &Counter{held: map[string]held{}}
	c.change("a", 1)
	c.change("b", 1)
	c.change("b", 1)
	c.change("c", 1)
	users, _, seq := c.snapshot(nil, 0)
	if len(users) != 3 {
		t.Fatalf("first pass: %v", users)
	}
	c.change("a", -1) // a's last connection closed
	c.change("b", 1)
	c.change("d", 1) // new: its acquire script counted it
	again, counts, _ := c.snapshot(users, seq)
	got := map[string]int{}
	for i, u := range again {
		got[u] = counts[i]
	}
	if want := map[string]int{"a": 0, "b": 3}; !maps.Equal(got, want) {
		t.Errorf("second pass = %v, want %v", got, want)
	}
}
