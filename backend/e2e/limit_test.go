package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
	wire "github.com/codingplan/codingplan/shared"

	"github.com/codingplan/codingplan/backend/internal/valkeytest"
)

// meter is the provider's own count of the streams it serves at once per user (each user
// asks for a model named after itself), and the most it ever saw.
type meter struct {
	mu     sync.Mutex
	active map[string]int
	most   map[string]int
	ends   map[int64]func() // a request's decrement, once
}

func newMeter() *meter {
	return &meter{active: map[string]int{}, most: map[string]int{}, ends: map[int64]func(){}}
}

// begin counts request r as streaming and returns the function that ends it (at most once).
func (m *meter) begin(r *providertest.Request) func() {
	user := r.Model
	m.mu.Lock()
	defer m.mu.Unlock()
	m.active[user]++
	m.most[user] = max(m.most[user], m.active[user])
	var once sync.Once
	end := func() {
		once.Do(func() {
			m.mu.Lock()
			m.active[user]--
			delete(m.ends, r.ID)
			m.mu.Unlock()
		})
	}
	m.ends[r.ID] = end
	return end
}

// ended ends request id, whatever ended it (the event log's end event).
func (m *meter) ended(id int64) {
	m.mu.Lock()
	end := m.ends[id]
	m.mu.Unlock()
	if end != nil {
		end()
	}
}

// countingProvider streams chunks(user) chunks, one every pace, to each request, counting it
// in m from its start until just before its last chunk (when the provider is done with it) or
// until the client goes away.
func countingProvider(t *testing.T, m *meter, chunksOf func(user string) int, pace time.Duration) *providertest.Server {
	srv := providertest.New()
	t.Cleanup(srv.Close)
	srv.Script(func(r *providertest.Request) providertest.Reply {
		end := m.begin(r)
		chunks := chunksOf(r.Model)
		text := make([]string, chunks)
		for i := range text {
			text[i] = "tok "
		}
		return providertest.Reply{Chunks: text, Pace: func(ctx context.Context, i int) error {
			t := time.NewTimer(pace)
			defer t.Stop()
			select {
			case <-ctx.Done():
				end()
				return ctx.Err()
			case <-t.C:
			}
			if i == chunks-1 {
				end()
			}
			return nil
		}}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() { // ends requests that ended outside Pace (a write to a gone client)
		defer close(done)
		n := 0
		for {
			evs, err := srv.EventsSince(ctx, n)
			if err != nil {
				return
			}
			n += len(evs)
			for _, e := range evs {
				if e.Kind == providertest.EventEnd {
					m.ended(e.ID)
				}
			}
		}
	}()
	return srv
}

// outcomes tallies how requests ended.
type outcomes struct {
	mu     sync.Mutex
	counts map[string]int // "done", an error code, "node killed"
	bad    []string       // endings no client should see
	dones  []time.Time    // when each done arrived
	admits [][2]time.Time // a request's send time and its first delta's
	lost   atomic.Int64   // streams stopped because their lease was lost
	lostAt []time.Time    // when each of those stops reached its client
}

func (o *outcomes) add(kind string) {
	o.mu.Lock()
	o.counts[kind]++
	if kind == "done" {
		o.dones = append(o.dones, time.Now())
	}
	o.mu.Unlock()
}

// admitted records that a request sent at sent got its first delta now.
func (o *outcomes) admitted(sent time.Time) {
	o.mu.Lock()
	o.admits = append(o.admits, [2]time.Time{sent, time.Now()})
	o.mu.Unlock()
}

// firstAdmit is when a request sent after t first got output (zero: none yet).
func (o *outcomes) firstAdmit(t time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	var first time.Time
	for _, a := range o.admits {
		if a[0].After(t) && (first.IsZero() || a[1].Before(first)) {
			first = a[1]
		}
	}
	return first
}

// firstDone is when the first done after t arrived (zero: none yet).
func (o *outcomes) firstDone(t time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := sort.Search(len(o.dones), func(i int) bool { return o.dones[i].After(t) })
	if i == len(o.dones) {
		return time.Time{}
	}
	return o.dones[i]
}

func (o *outcomes) fail(format string, args ...any) {
	o.mu.Lock()
	if len(o.bad) < 20 {
		o.bad = append(o.bad, fmt.Sprintf(format, args...))
	}
	o.mu.Unlock()
}

// TestPlanLimitAtProvider is the plan limit's proof: three backend nodes on one Valkey, users
// on a plan of 2 sending ten times that many requests at once through every node, while a
// node is killed (-9) and restarted, Valkey is restarted with SIGTERM and with SIGKILL (losing
// every lease), and Valkey hangs for longer than a lease's TTL (every lease expires under its
// holders). The provider counts the streams it serves per user: never more than 2. Every request
// ends in done or a documented error (rate_limited, or internal with retry_after_ms), or with
// its connection when its node was killed; none hangs.
func TestPlanLimitAtProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about a minute")
	}
	const (
		limit   = 2
		users   = 6
		perUser = 10 * limit // 10x over the limit
		ttl     = 3 * time.Second
	)
	vk := valkeytest.Start(t)
	m := newMeter()
	// Streams of about 300 ms, and for two users 10 s: longer than a lease's TTL and than
	// Valkey's hang below, so that their leases are renewed, re-established after Valkey
	// restarts, and lost while Valkey hangs.
	long := map[string]bool{"u4": true, "u5": true}
	provider := countingProvider(t, m, func(user string) int {
		if long[user] {
			return 330
		}
		return 10
	}, 30*time.Millisecond)

	dir, stateDir, logDir := dirs(t)
	var models strings.Builder
	for u := range users {
		fmt.Fprintf(&models, "\n[[models]]\nname = \"u%d\"\nprovider = \"openai-chat\"\nbase_url = %q\nmodel = \"u%d\"\n",
			u, provider.URL+"/v1", u)
	}
	config := fmt.Sprintf(`valkey = %q
valkey_prefix = "limit"
lease_ttl = %q
lease_max_wait = "500ms"
drain_timeout = "2s"
default_model = "u0"

[plans.two]
concurrency = %d
%s`, vk.Addr(), ttl.String(), limit, models.String())
	cfgPath := writeConfig(t, dir, config)
	tokens := make([]string, users)
	for u := range users {
		tokens[u] = mintToken(t, cfgPath, stateDir, fmt.Sprintf("u%d", u), "two")
	}
	// Each user's keys are new, and the test's Valkey too: wait out its recovery window once
	// (lease_ttl + 1s) so that the load starts at full speed.
	nodes := make([]*node, 3)
	for i := range nodes {
		nodes[i] = newNode(t, fmt.Sprintf("node%d", i), logDir, "--config", cfgPath, "--state-dir", stateDir)
	}

	o := &outcomes{counts: map[string]int{}}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for u := range users {
		for k := range perUser {
			wg.Go(func() { worker(ctx, o, nodes, k, fmt.Sprintf("u%d", u), tokens[u]) })
		}
	}
	start := time.Now()
	phase := func(name string, d time.Duration) {
		t.Logf("%6.1fs %s", time.Since(start).Seconds(), name)
		timer := time.NewTimer(d) // the load runs meanwhile: this paces the fault script
		defer timer.Stop()
		<-timer.C
	}
	recovered := func(what string, since time.Time) {
		t.Helper()
		waitFor(t, 4*ttl, "a request to finish after "+what, func() bool { return !o.firstDone(since).IsZero() })
		waitFor(t, 4*ttl, "a request sent after "+what+" to get output", func() bool { return !o.firstAdmit(since).IsZero() })
		t.Logf("%6.1fs after %s: first done %v later, first output of a request sent after it %v later",
			time.Since(start).Seconds(), what, o.firstDone(since).Sub(since).Round(time.Millisecond),
			o.firstAdmit(since).Sub(since).Round(time.Millisecond))
	}

	phase("load on 3 nodes (first the recovery window of the new Valkey)", ttl+2*time.Second)
	recovered("start", start)

	nodes[2].kill()
	phase("node2 killed (-9)", 2*time.Second)
	nodes[2].start()
	phase("node2 back", 2*time.Second)

	vk.Stop(syscall.SIGTERM)
	vk.Restart()
	restarted := time.Now()
	restarts := []time.Time{restarted}
	phase("Valkey restarted after SIGTERM (its leases lost)", 2*ttl)
	recovered("the SIGTERM restart", restarted)

	vk.Stop(syscall.SIGKILL)
	vk.Restart()
	restarted = time.Now()
	restarts = append(restarts, restarted)
	phase("Valkey restarted after SIGKILL", 2*ttl)
	recovered("the SIGKILL restart", restarted)

	vk.Signal(syscall.SIGSTOP)
	hung := time.Now()
	phase("Valkey hung (SIGSTOP) for longer than a TTL", ttl+2*time.Second)
	vk.Signal(syscall.SIGCONT)
	resumed := time.Now()
	phase("Valkey resumed (every lease it held has expired)", 2*ttl)
	recovered("the hang", resumed)
	o.mu.Lock()
	for _, at := range o.lostAt {
		if at.After(hung) {
			t.Logf("hang: the first stream stopped for its unconfirmed lease reached its client %v after Valkey hung (lease_ttl %v)",
				at.Sub(hung).Round(time.Millisecond), ttl)
			break
		}
	}
	o.mu.Unlock()

	stop()
	wg.Wait()
	t.Logf("%6.1fs load stopped", time.Since(start).Seconds())

	m.mu.Lock()
	var names []string
	for u := range m.most {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		t.Logf("provider: user %s had at most %d streams at once", u, m.most[u])
		if m.most[u] > limit {
			t.Errorf("provider saw %d streams at once for %s, whose plan allows %d", m.most[u], u, limit)
		}
	}
	m.mu.Unlock()
	if len(names) != users {
		t.Errorf("the provider served %d users, want %d", len(names), users)
	}
	o.mu.Lock()
	t.Logf("outcomes: %v; streams stopped by a lost lease: %d", o.counts, o.lost.Load())
	for _, b := range o.bad {
		t.Errorf("request: %s", b)
	}
	if o.counts["done"] < 100 {
		t.Errorf("only %d requests finished", o.counts["done"])
	}
	o.mu.Unlock()
	lost, regained := 0, 0
	for _, n := range nodes {
		lost += n.logsContain(`"msg":"lease lost: stopping its stream"`)
		regained += n.logsContain(`"msg":"lease gone from Valkey before release: re-establishing it"`)
	}
	var regainedAt []time.Time
	for _, n := range nodes {
		regainedAt = append(regainedAt, n.logTimes(`"msg":"lease gone from Valkey before release: re-establishing it"`)...)
	}
	sort.Slice(regainedAt, func(i, j int) bool { return regainedAt[i].Before(regainedAt[j]) })
	for i, r := range restarts {
		for _, at := range regainedAt {
			if at.After(r) {
				t.Logf("restart %d: the first lease found gone was re-established %v after Valkey came back", i+1, at.Sub(r).Round(time.Millisecond))
				break
			}
		}
	}
	t.Logf("nodes' logs: %d leases found gone from Valkey and re-established or lost; %d lost", regained, lost)
	if regained == 0 || lost == 0 || o.lost.Load() == 0 {
		t.Errorf("the faults re-established %d leases and lost %d (%d streams stopped for it): want each to happen",
			regained, lost, o.lost.Load())
	}

	// Every lease is released or lapses: nothing is left in Valkey for long.
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{vk.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, 2*ttl, "every lease to leave Valkey", func() bool {
		for u := range users {
			n, err := c.Do(context.Background(), c.B().Zcount().Key(fmt.Sprintf("limit:{u%d}:leases", u)).
				Min("-inf").Max("+inf").Build()).AsInt64()
			if err != nil || n > 1 { // the recovery sentinel may remain until its window ends
				return false
			}
		}
		return true
	})
}

// worker is one client of user: it keeps one request at a time in flight on a connection to
// one of the nodes, from the k-th on, moving to the next node when its node goes away, and
// records how each request ended.
func worker(ctx context.Context, o *outcomes, nodes []*node, k int, user, token string) {
	var conn *websocket.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	var at *node
	kills := 0 // at's kill count when the connection was made
	for seq := 0; ctx.Err() == nil; seq++ {
		if conn == nil {
			at = nodes[(k+seq)%len(nodes)]
			kills = at.killCount()
			d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 5 * time.Second}
			c, _, err := d.DialContext(ctx, at.wsURL(), http.Header{"Authorization": {"Bearer " + token}})
			if err != nil {
				pause(ctx, 100*time.Millisecond) // the node is down: try the next one shortly
				continue
			}
			conn = c
		}
		id := fmt.Sprintf("r%d", seq)
		b, _ := wire.Marshal(wire.ClientFrame{Type: wire.TypeRequest, ID: id, Op: wire.OpCompletion, Model: user,
			Completion: &wire.Completion{Prefix: "func add(a, b int) int {\n\treturn ", Language: "go"}})
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
			conn.Close()
			conn = nil
			continue
		}
		retry, err := await(conn, id, o, time.Now())
		if err != nil {
			conn.Close()
			conn = nil
			switch {
			case at.killCount() > kills:
				o.add("node killed")
			case ctx.Err() == nil:
				o.fail("%s %s on %s: %v", user, id, at.name, err)
			}
			continue
		}
		pause(ctx, min(retry, 500*time.Millisecond)+time.Duration(rand.N(50))*time.Millisecond)
	}
}

// await reads the frames of request id until its done or error frame, which it records, and
// returns the retry hint of an error. A request may take at most 30 s.
func await(conn *websocket.Conn, id string, o *outcomes, sent time.Time) (time.Duration, error) {
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	output := false
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return 0, err
		}
		f, err := wire.DecodeServer(data)
		if err != nil {
			return 0, fmt.Errorf("undecodable frame: %w", err)
		}
		if f.ID != id {
			continue // hello, pong
		}
		switch f.Type {
		case wire.TypeDelta:
			if !output {
				output = true
				o.admitted(sent)
			}
			continue
		case wire.TypeQueued:
			continue
		case wire.TypeDone:
			o.add("done")
			return 0, nil
		case wire.TypeError:
			if strings.Contains(f.Message, "the stream was stopped") {
				o.lost.Add(1)
				o.mu.Lock()
				o.lostAt = append(o.lostAt, time.Now())
				o.mu.Unlock()
			}
			switch {
			case f.Code == wire.CodeRateLimited, f.Code == wire.CodeInternal && f.RetryAfterMS > 0:
				o.add(string(f.Code))
				return time.Duration(f.RetryAfterMS) * time.Millisecond, nil
			}
			o.fail("error frame %s: %s (retry_after_ms %d)", f.Code, f.Message, f.RetryAfterMS)
			return time.Second, nil
		default:
			return 0, errors.New("unexpected frame " + f.Type)
		}
	}
}

// pause waits d or until ctx ends (a client's backoff between requests, not a wait for a result).
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
