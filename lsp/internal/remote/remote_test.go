package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
	wire "github.com/codingplan/codingplan/shared"
)

// waitLink waits until the connection's own state (not busy, rate limited...) is want, woken
// by the client's broadcasts.
func (h *harness) waitLink(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.c.mu.Lock()
		s := h.c.link
		ready := s.state != lspx.StateReady || h.c.cur != nil
		ch := h.c.changed
		h.c.mu.Unlock()
		if s.state == want && ready {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for state %q (now %+v)", want, s)
		}
	}
}

func done(id string) wire.ServerFrame {
	return wire.ServerFrame{Type: wire.TypeDone, ID: id, FinishReason: wire.FinishStop, Usage: &wire.Usage{PromptTokens: 1, CompletionTokens: 2}}
}

func delta(id, text string) wire.ServerFrame {
	return wire.ServerFrame{Type: wire.TypeDelta, ID: id, Text: wire.Text(text)}
}

func TestStreamMultiplexesOneConnection(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", nil)
	fc := recv(t, b.conns, "a connection")
	h.waitLink(t, lspx.StateReady)

	const n = 3
	results := make([]<-chan streamResult, n)
	for i := range n {
		results[i] = goStream(t, context.Background(), h.c, fmt.Sprint("p", i))
	}
	ids := map[string]string{} // prefix -> stream id
	seen := map[string]bool{}
	for range n {
		f := fc.next(t)
		if f.Type != wire.TypeRequest || f.Op != wire.OpCompletion {
			t.Fatalf("got frame %q op %q, want a completion request", f.Type, f.Op)
		}
		if seen[f.ID] {
			t.Fatalf("stream id %q used twice", f.ID)
		}
		seen[f.ID] = true
		ids[string(f.Completion.Prefix)] = f.ID
	}
	if s := h.waitStatus(t, lspx.StateBusy); s.Plan == nil || s.Plan.Name != "pro" {
		t.Errorf("busy status plan = %+v, want pro from hello", s.Plan)
	}
	// Deltas of the three streams interleaved, in reverse order of the requests.
	for round := range 2 {
		for i := n - 1; i >= 0; i-- {
			fc.send(t, delta(ids[fmt.Sprint("p", i)], fmt.Sprintf("%d.%d ", i, round)))
		}
	}
	for i := n - 1; i >= 0; i-- {
		fc.send(t, done(ids[fmt.Sprint("p", i)]))
	}
	for i := range n {
		r := recv(t, results[i], "a stream's result")
		if r.err != nil {
			t.Fatalf("stream %d: %v", i, r.err)
		}
		if want := fmt.Sprintf("%d.0 %d.1 ", i, i); r.text != want {
			t.Errorf("stream %d text = %q, want %q", i, r.text, want)
		}
		if r.done.FinishReason != wire.FinishStop || r.done.Usage == nil || r.done.Usage.CompletionTokens != 2 {
			t.Errorf("stream %d done = %+v", i, r.done)
		}
	}
	h.waitStatus(t, lspx.StateReady)
	if len(b.conns) != 0 {
		t.Errorf("the client opened %d more connections, want one for everything", len(b.conns))
	}
	b.mu.Lock()
	hdr := b.headers[0]
	b.mu.Unlock()
	if got, want := hdr.Get("Authorization"), "Bearer tok"; got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
	if got, want := hdr.Get("User-Agent"), "codingplan-lsp/test"; got != want {
		t.Errorf("User-Agent = %q, want %q", got, want)
	}
	if got := hdr.Get("Sec-Websocket-Protocol"); got != wire.Subprotocol {
		t.Errorf("subprotocols = %q, want %q", got, wire.Subprotocol)
	}
}

// TestShortStreamsChangeNoStatus: a stream that ends before BusyAfter sends no busy status and
// no ready after it; one that runs longer does both.
func TestShortStreamsChangeNoStatus(t *testing.T) {
	for _, long := range []bool{false, true} {
		t.Run(fmt.Sprint("long=", long), func(t *testing.T) {
			b := newFakeBackend(t, "tok")
			h := start(t, b, "tok", func(c *Config) {
				c.BusyAfter = time.Hour
				if long {
					c.BusyAfter = time.Millisecond
				}
			})
			fc := recv(t, b.conns, "a connection")
			h.waitStatus(t, lspx.StateReady)
			res := goStream(t, context.Background(), h.c, "p")
			req := fc.next(t)
			if long {
				h.waitStatus(t, lspx.StateBusy)
			}
			fc.send(t, delta(req.ID, "x"))
			fc.send(t, done(req.ID))
			if r := recv(t, res, "the stream"); r.err != nil {
				t.Fatal(r.err)
			}
			if long {
				h.waitStatus(t, lspx.StateReady)
				return
			}
			// OnStatus is called in order: a status the stream caused would come before this.
			h.c.SetToken("")
			if s := recv(t, h.statuses, "a status"); s.State != lspx.StateSignedOut {
				t.Errorf("status after a short stream and sign-out = %q, want %q first", s.State, lspx.StateSignedOut)
			}
		})
	}
}

// TestLargeAndSmallFrames: a request too large for its stream to write goes out through the
// writer goroutine, and frames keep their order around it.
func TestLargeAndSmallFrames(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", nil)
	fc := recv(t, b.conns, "a connection")
	h.waitLink(t, lspx.StateReady)
	prefixes := []string{"small-1", strings.Repeat("x", 3*maxInlineWrite), "small-2"}
	var results []<-chan streamResult
	for _, p := range prefixes {
		results = append(results, goStream(t, context.Background(), h.c, p))
		f := fc.next(t) // in order: the next stream starts once this one's request is out
		if string(f.Completion.Prefix) != p {
			t.Fatalf("request with a %d-byte prefix, want %d bytes", len(f.Completion.Prefix), len(p))
		}
		fc.send(t, delta(f.ID, "ok"))
		fc.send(t, done(f.ID))
	}
	for i, ch := range results {
		if r := recv(t, ch, "a stream"); r.err != nil || r.text != "ok" {
			t.Errorf("stream %d = %q, %v", i, r.text, r.err)
		}
	}
}

func TestCancelSendsCancelFrameAtOnce(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", nil)
	fc := recv(t, b.conns, "a connection")
	h.waitLink(t, lspx.StateReady)

	ctx, cancel := context.WithCancel(context.Background())
	res := goStream(t, ctx, h.c, "slow")
	req := fc.next(t)
	fc.send(t, delta(req.ID, "par"))
	cancel() // the backend never answers: Stream must not wait for it
	r := recv(t, res, "the cancelled stream")
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", r.err)
	}
	got := fc.next(t)
	if got.Type != wire.TypeCancel || got.ID != req.ID {
		t.Fatalf("got %s %q, want cancel %q", got.Type, got.ID, req.ID)
	}
	// Late frames of the cancelled stream are dropped; the next stream is unaffected.
	fc.send(t, delta(req.ID, "tial"))
	fc.send(t, wire.ServerFrame{Type: wire.TypeError, ID: req.ID, Code: wire.CodeCanceled})
	res2 := goStream(t, context.Background(), h.c, "next")
	req2 := fc.next(t)
	fc.send(t, delta(req2.ID, "ok"))
	fc.send(t, done(req2.ID))
	if r2 := recv(t, res2, "the second stream"); r2.err != nil || r2.text != "ok" {
		t.Fatalf("second stream = %q, %v; want ok", r2.text, r2.err)
	}
}

func TestEarlyStopFromOnDelta(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", nil)
	fc := recv(t, b.conns, "a connection")
	h.waitLink(t, lspx.StateReady)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan error, 1)
	go func() {
		_, err := h.c.Stream(ctx, wire.ClientFrame{Op: wire.OpCompletion, Completion: &wire.Completion{}},
			func(text []byte) {
				if strings.Contains(string(text), "\n") {
					cancel()
				}
			})
		res <- err
	}()
	req := fc.next(t)
	fc.send(t, delta(req.ID, "line\n"))
	if err := recv(t, res, "the stream"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := fc.next(t); got.Type != wire.TypeCancel || got.ID != req.ID {
		t.Fatalf("got %s %q, want cancel %q", got.Type, got.ID, req.ID)
	}
}

func TestReconnectsAfterDrop(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", nil)
	fc1 := recv(t, b.conns, "the first connection")
	h.waitLink(t, lspx.StateReady)

	res := goStream(t, context.Background(), h.c, "x")
	fc1.next(t)
	_ = fc1.ws.Close() // the backend vanishes mid-stream
	if r := recv(t, res, "the broken stream"); !errors.Is(r.err, ErrDisconnected) {
		t.Fatalf("err = %v, want ErrDisconnected", r.err)
	}
	if d := recv(t, h.pauses, "a reconnect delay"); d < 0 || d > h.c.cfg.MinBackoff {
		t.Errorf("first delay after a drop = %v, want within [0, %v]", d, h.c.cfg.MinBackoff)
	}
	fc2 := recv(t, b.conns, "the second connection")
	h.waitLink(t, lspx.StateReady)
	res = goStream(t, context.Background(), h.c, "y")
	req := fc2.next(t)
	fc2.send(t, done(req.ID))
	if r := recv(t, res, "the stream after reconnecting"); r.err != nil {
		t.Fatal(r.err)
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	b := newFakeBackend(t, "tok")
	b.refuse = 5
	h := start(t, b, "tok", func(c *Config) {
		c.MinBackoff, c.MaxBackoff = 2*time.Millisecond, 8*time.Millisecond
	})
	// Upper bounds of attempts 0..4: 2, 4, 8, 8 (capped), 8 ms; each delay is in [bound/2, bound].
	for i, bound := range []time.Duration{2, 4, 8, 8, 8} {
		bound *= time.Millisecond
		if got := recv(t, b.upgrades, "an upgrade"); got != http.StatusServiceUnavailable {
			t.Fatalf("upgrade %d: %d", i, got)
		}
		d := recv(t, h.pauses, "a delay")
		if d < bound/2 || d > bound {
			t.Errorf("delay %d = %v, want within [%v, %v]", i, d, bound/2, bound)
		}
	}
	recv(t, b.conns, "the connection after the backend came up")
	h.waitLink(t, lspx.StateReady)
}

func TestFailFastWhileDisconnected(t *testing.T) {
	b := newFakeBackend(t, "tok")
	b.refuse = 1
	h := start(t, b, "tok", func(c *Config) {
		c.MinBackoff, c.MaxBackoff = time.Hour, time.Hour
		c.ConnectWait = time.Hour // a Stream that waited would time the test out
	})
	recv(t, h.pauses, "the backoff")
	s := h.waitStatus(t, lspx.StateError)
	if s.RetryAfterMS <= 0 || !strings.Contains(s.Message, "HTTP 503") {
		t.Errorf("status = %+v, want error with the retry time and the cause", s)
	}
	_, err := h.c.Stream(context.Background(), wire.ClientFrame{Op: wire.OpCompletion, Completion: &wire.Completion{}}, nil)
	if !errors.Is(err, ErrDisconnected) {
		t.Fatalf("err = %v, want ErrDisconnected", err)
	}
}

func TestSignedOut(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "", func(c *Config) { c.ConnectWait = time.Hour })
	h.waitStatus(t, lspx.StateSignedOut)
	_, err := h.c.Stream(context.Background(), wire.ClientFrame{Op: wire.OpCompletion, Completion: &wire.Completion{}}, nil)
	if !errors.Is(err, ErrSignedOut) {
		t.Fatalf("err = %v, want ErrSignedOut", err)
	}
	if len(b.upgrades) != 0 {
		t.Fatalf("the client dialed without a token")
	}
	h.c.SetToken("tok")
	fc := recv(t, b.conns, "a connection after sign-in")
	h.waitLink(t, lspx.StateReady)

	// Signing out closes the connection and fails the running stream.
	res := goStream(t, context.Background(), h.c, "x")
	fc.next(t)
	h.c.SetToken("")
	if r := recv(t, res, "the stream"); !errors.Is(r.err, ErrSignedOut) {
		t.Fatalf("err = %v, want ErrSignedOut", r.err)
	}
	recv(t, fc.closed, "the connection to close")
	h.waitLink(t, lspx.StateSignedOut)
}

func TestFirstRequestWaitsForStartup(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", nil)
	// Straight after Run starts: the connection is still being set up.
	res := goStream(t, context.Background(), h.c, "first")
	fc := recv(t, b.conns, "a connection")
	req := fc.next(t)
	fc.send(t, done(req.ID))
	if r := recv(t, res, "the first stream"); r.err != nil {
		t.Fatalf("first request after start-up: %v", r.err)
	}
}

func TestUnauthorizedUpgradeBacksOffLong(t *testing.T) {
	b := newFakeBackend(t, "good")
	h := start(t, b, "bad", func(c *Config) { c.AuthRetry = time.Hour })
	if got := recv(t, b.upgrades, "an upgrade"); got != http.StatusUnauthorized {
		t.Fatalf("upgrade = %d, want 401", got)
	}
	s := h.waitStatus(t, lspx.StateSignedOut)
	if !strings.Contains(s.Message, "bad signature") {
		t.Errorf("message = %q, want the backend's reason", s.Message)
	}
	if d := recv(t, h.pauses, "the delay after 401"); d != time.Hour {
		t.Fatalf("delay after 401 = %v, want AuthRetry (1h), no hot loop", d)
	}
	_, err := h.c.Stream(context.Background(), wire.ClientFrame{Op: wire.OpCompletion, Completion: &wire.Completion{}}, nil)
	if !errors.Is(err, ErrSignedOut) {
		t.Fatalf("err = %v, want ErrSignedOut", err)
	}
	h.c.SetToken("good")
	recv(t, b.conns, "a connection with the new token")
	h.waitLink(t, lspx.StateReady)
	if got := recv(t, b.upgrades, "the second upgrade"); got != http.StatusSwitchingProtocols {
		t.Errorf("second upgrade = %d, want 101", got)
	}
	if n := len(b.upgrades); n != 0 {
		t.Errorf("%d extra upgrade attempts", n)
	}
}

func TestInBandAuth(t *testing.T) {
	b := newFakeBackend(t, "a", "b")
	h := start(t, b, "a", nil)
	fc := recv(t, b.conns, "a connection")
	h.waitLink(t, lspx.StateReady)

	h.c.SetToken("b")
	if got := recv(t, fc.auths, "an auth frame"); got != "b" {
		t.Fatalf("auth token = %q, want b", string(got))
	}
	h.c.SetToken("c") // the backend refuses it
	if got := recv(t, fc.auths, "an auth frame"); got != "c" {
		t.Fatalf("auth token = %q, want c", string(got))
	}
	h.waitLink(t, lspx.StateSignedOut)
	_, err := h.c.Stream(context.Background(), wire.ClientFrame{Op: wire.OpCompletion, Completion: &wire.Completion{}}, nil)
	if !errors.Is(err, ErrSignedOut) {
		t.Fatalf("err = %v, want ErrSignedOut", err)
	}
	h.c.SetToken("a")
	recv(t, fc.auths, "an auth frame")
	h.waitLink(t, lspx.StateReady)
	res := goStream(t, context.Background(), h.c, "x")
	req := fc.next(t)
	fc.send(t, done(req.ID))
	if r := recv(t, res, "the stream"); r.err != nil {
		t.Fatal(r.err)
	}
	if len(b.conns) != 0 {
		t.Errorf("token refresh opened a new connection")
	}
}

func TestTokenExpired(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", nil)
	fc := recv(t, b.conns, "a connection")
	h.waitLink(t, lspx.StateReady)
	fc.send(t, wire.ServerFrame{Type: wire.TypeError, Code: wire.CodeTokenExpired, Message: "the token expired"})
	s := h.waitStatus(t, lspx.StateError)
	if s.Message != "token expired, sign in again" {
		t.Errorf("message = %q", s.Message)
	}
	_, err := h.c.Stream(context.Background(), wire.ClientFrame{Op: wire.OpCompletion, Completion: &wire.Completion{}}, nil)
	if !errors.Is(err, ErrSignedOut) {
		t.Fatalf("err = %v, want ErrSignedOut", err)
	}
}

func TestGoaway(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", nil)
	fc1 := recv(t, b.conns, "the first connection")
	h.waitLink(t, lspx.StateReady)

	old := goStream(t, context.Background(), h.c, "old")
	oldReq := fc1.next(t)
	fc1.send(t, wire.ServerFrame{Type: wire.TypeGoaway, Reason: "shutdown", RetryAfterMS: 5})
	if d := recv(t, h.pauses, "the goaway delay"); d < 5*time.Millisecond || d > 6*time.Millisecond {
		t.Errorf("delay after goaway = %v, want retry_after_ms 5ms plus at most 10%% jitter", d)
	}
	fc2 := recv(t, b.conns, "the new connection")
	h.waitLink(t, lspx.StateReady)

	// New streams go to the new connection while the old one finishes its stream.
	res := goStream(t, context.Background(), h.c, "new")
	req := fc2.next(t)
	fc2.send(t, done(req.ID))
	if r := recv(t, res, "the new stream"); r.err != nil {
		t.Fatal(r.err)
	}
	fc1.send(t, delta(oldReq.ID, "finished"))
	fc1.send(t, done(oldReq.ID))
	if r := recv(t, old, "the old stream"); r.err != nil || r.text != "finished" {
		t.Fatalf("old stream = %q, %v; want it to finish on the old connection", r.text, r.err)
	}
	recv(t, fc1.closed, "the drained connection to close")
}

func TestGoawayThenDropFailsRetryable(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", nil)
	fc1 := recv(t, b.conns, "the first connection")
	h.waitLink(t, lspx.StateReady)
	old := goStream(t, context.Background(), h.c, "old")
	fc1.next(t)
	fc1.send(t, wire.ServerFrame{Type: wire.TypeGoaway, RetryAfterMS: 1})
	recv(t, b.conns, "the new connection")
	_ = fc1.ws.Close()
	if r := recv(t, old, "the old stream"); !errors.Is(r.err, ErrDisconnected) {
		t.Fatalf("err = %v, want ErrDisconnected", r.err)
	}
}

func TestRateLimitedAndQuotaStatus(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", nil)
	fc := recv(t, b.conns, "a connection")
	h.waitStatus(t, lspx.StateReady)

	res := goStream(t, context.Background(), h.c, "x")
	req := fc.next(t)
	plan := &wire.Plan{Name: "lite", Concurrency: 1, InUse: 1}
	fc.send(t, wire.ServerFrame{Type: wire.TypeError, ID: req.ID, Code: wire.CodeRateLimited,
		Message: "the plan allows 1 stream at once", RetryAfterMS: 80, Plan: plan})
	r := recv(t, res, "the stream")
	var e *wire.Error
	if !errors.As(r.err, &e) || e.Code != wire.CodeRateLimited || e.RetryAfterMS != 80 {
		t.Fatalf("err = %v, want rate_limited with retry_after_ms 80", r.err)
	}
	s := h.waitStatus(t, lspx.StateRateLimited)
	if s.RetryAfterMS <= 0 || s.RetryAfterMS > 80 || s.Plan == nil || s.Plan.InUse != 1 || s.Plan.Name != "lite" || s.Reason != lspx.ReasonRateLimited {
		t.Errorf("status = %+v, want rate limited for at most 80ms with the plan", s)
	}
	h.waitStatus(t, lspx.StateReady) // by itself once the retry time has passed

	// A backend that cannot start streams for a while (its lease store is down) says so with
	// internal and a retry hint: the status tells the user, then recovers by itself.
	res = goStream(t, context.Background(), h.c, "w")
	req = fc.next(t)
	fc.send(t, wire.ServerFrame{Type: wire.TypeError, ID: req.ID, Code: wire.CodeInternal,
		Message: "the server's lease store restarted", RetryAfterMS: 80})
	if r := recv(t, res, "the stream"); !isCode(r.err, wire.CodeInternal) {
		t.Fatalf("err = %v, want internal", r.err)
	}
	if s := h.waitStatus(t, lspx.StateError); !strings.Contains(s.Message, "lease store restarted") || s.RetryAfterMS <= 0 {
		t.Errorf("status = %+v, want an error naming the cause with a retry time", s)
	}
	h.waitStatus(t, lspx.StateReady)

	res = goStream(t, context.Background(), h.c, "y")
	req = fc.next(t)
	fc.send(t, wire.ServerFrame{Type: wire.TypeError, ID: req.ID, Code: wire.CodeQuotaExceeded, Message: "daily limit"})
	if r := recv(t, res, "the stream"); !isCode(r.err, wire.CodeQuotaExceeded) {
		t.Fatalf("err = %v, want quota_exceeded", r.err)
	}
	h.waitStatus(t, lspx.StateQuotaExceeded)
	res = goStream(t, context.Background(), h.c, "z")
	req = fc.next(t)
	fc.send(t, done(req.ID))
	recv(t, res, "the stream")
	h.waitStatus(t, lspx.StateReady)
}

func TestKeepalive(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", func(c *Config) {
		c.PingInterval, c.ReadTimeout = 5*time.Millisecond, 40*time.Millisecond
	})
	fc := recv(t, b.conns, "a connection")
	h.waitLink(t, lspx.StateReady)
	// 20 pings answered with pongs span 100ms, over twice the read timeout: the connection lives.
	for range 20 {
		recv(t, fc.pings, "a ping")
	}
	if len(b.conns) != 0 || h.c.Status().State != lspx.StateReady {
		t.Fatalf("the connection did not survive an idle period with pongs")
	}
}

func TestDeadPeerDetected(t *testing.T) {
	b := newFakeBackend(t, "tok")
	b.mute = true // hello, then silence: no frames, no pongs
	h := start(t, b, "tok", func(c *Config) {
		c.PingInterval, c.ReadTimeout = 5*time.Millisecond, 30*time.Millisecond
	})
	recv(t, b.conns, "the first connection")
	h.waitLink(t, lspx.StateReady)
	b.mu.Lock()
	b.mute = false
	b.mu.Unlock()
	recv(t, b.conns, "a new connection after the read deadline")
}

func TestSetURLMovesToTheNewBackend(t *testing.T) {
	b1 := newFakeBackend(t, "tok")
	b2 := newFakeBackend(t, "tok")
	h := start(t, b1, "tok", nil)
	fc1 := recv(t, b1.conns, "the first connection")
	h.waitLink(t, lspx.StateReady)
	h.c.SetURL(b2.url())
	recv(t, b2.conns, "a connection to the new backend")
	recv(t, fc1.closed, "the old connection to close")
}

func TestDialerUsesProxyFromEnvironment(t *testing.T) {
	c := New(Config{}, nil)
	if c.dialer.Proxy == nil {
		t.Fatal("the dialer ignores HTTPS_PROXY/HTTP_PROXY")
	}
}

// BenchmarkStream measures one request's round trip through the client over a loopback
// websocket to a backend that answers at once with one delta and done.
func BenchmarkStream(b *testing.B) {
	fb := newFakeBackend(b, "tok")
	c := New(Config{URL: fb.url(), Token: "tok"}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = c.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	fc := <-fb.conns
	stop := make(chan struct{})
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		for {
			select {
			case f := <-fc.frames:
				if f.Type == wire.TypeRequest {
					fc.send(b, delta(f.ID, "a + b"))
					fc.send(b, done(f.ID))
				}
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); <-answered }()
	req := wire.ClientFrame{Op: wire.OpCompletion, Completion: &wire.Completion{Prefix: "func add(a, b int) int {\n\treturn ", Suffix: "\n}\n"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Stream(context.Background(), req, func([]byte) {}); err != nil {
			b.Fatal(err)
		}
	}
}
