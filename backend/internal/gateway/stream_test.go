package gateway

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/lease"
	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// TestStreamingOrder checks each chunk is forwarded before the provider produces the next one,
// and the request reaches the provider intact.
func TestStreamingOrder(t *testing.T) {
	chunks := []string{"a + b", "\n", "}\"\\ é"}
	ack := make(chan struct{})
	var gotReq upstream.Request // a copy: the gateway wipes the request's content when the stream ends
	var gotPrefix string
	var gotPlan, gotModel string
	p := &fakeProvider{stream: func(ctx context.Context, req *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
		gotReq = *req
		if req.Completion != nil {
			gotPrefix = strings.Clone(string(req.Completion.Prefix))
		}
		for _, c := range chunks {
			if err := sink(0, []byte(c)); err != nil {
				return upstream.Result{}, err
			}
			select { // the client must have the chunk before the next is produced
			case <-ack:
			case <-ctx.Done():
				return upstream.Result{}, ctx.Err()
			}
		}
		return upstream.Result{FinishReason: wire.FinishLength, Usage: wire.Usage{PromptTokens: 42, CompletionTokens: 3}}, nil
	}}
	router := &fakeRouter{resolve: func(plan, model string) (upstream.Provider, error) {
		gotPlan, gotModel = plan, model
		return p, nil
	}}
	cnt := newCounter()
	obs := &fakeObserver{ended: make(chan StreamStats, 1)}
	h := newHarness(t, setup{deps: Deps{Router: router, Leases: cnt.leases(), Observer: obs}})
	c := h.dial(h.token(nil))
	c.request("c1")
	for _, want := range chunks {
		f := c.expect(wire.TypeDelta)
		if f.ID != "c1" || string(f.Text) != want {
			t.Fatalf("delta: got id=%q text=%q, want %q", f.ID, string(f.Text), want)
		}
		ack <- struct{}{}
	}
	done := c.expect(wire.TypeDone)
	if done.ID != "c1" || done.FinishReason != wire.FinishLength || done.Usage == nil || *done.Usage != (wire.Usage{PromptTokens: 42, CompletionTokens: 3}) {
		t.Errorf("done: %+v usage %+v", done, done.Usage)
	}
	if gotPlan != "pro" || gotModel != "default" {
		t.Errorf("router got plan=%q model=%q", gotPlan, gotModel)
	}
	if gotReq.Op != wire.OpCompletion || gotReq.Completion == nil || gotPrefix != "func add(a, b int) int {\n\treturn " {
		t.Errorf("provider request: %+v, prefix %q", gotReq, gotPrefix)
	}
	// The release overlaps the done frame's way out (see runStream), so wait for it.
	cnt.awaitRelease(t)
	if n := cnt.inUse("user-1"); n != 0 {
		t.Errorf("lease held after done: %d", n)
	}
	if s := recv(t, obs.ended, "stream stats"); s.Outcome != "ok" || s.Usage.CompletionTokens != 3 || s.FirstToken <= 0 {
		t.Errorf("stats: %+v", s)
	}
}

// TestDeltasHeldUntilFlush checks, through a connection, that the output a provider hands on
// between two flushes arrives as one delta, and that what is held when the stream ends goes
// out before done. (The writer may merge queued deltas too: TestHeldOutput checks the
// holding itself.)
func TestDeltasHeldUntilFlush(t *testing.T) {
	ack := make(chan struct{})
	p := &fakeProvider{hold: true, stream: func(ctx context.Context, _ *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
		for _, piece := range []string{"one ", "read ", "of three"} {
			if err := sink(0, []byte(piece)); err != nil {
				return upstream.Result{}, err
			}
		}
		if err := sink(0, nil); err != nil {
			return upstream.Result{}, err
		}
		select {
		case <-ack:
		case <-ctx.Done():
			return upstream.Result{}, ctx.Err()
		}
		if err := sink(0, []byte(" and a tail")); err != nil {
			return upstream.Result{}, err
		}
		return upstream.Result{FinishReason: wire.FinishStop}, nil
	}}
	h := newHarness(t, setup{deps: Deps{Router: routeTo(p)}})
	c := h.dial(h.token(nil))
	c.request("c1")
	if f := c.expect(wire.TypeDelta); string(f.Text) != "one read of three" {
		t.Errorf("first delta %q, want the three pieces before the flush in one frame", string(f.Text))
	}
	ack <- struct{}{}
	if f := c.expect(wire.TypeDelta); string(f.Text) != " and a tail" {
		t.Errorf("second delta %q, want the piece held at the end", string(f.Text))
	}
	c.expect(wire.TypeDone)
}

// TestHeldOutput checks heldOutput sends nothing until a flush, then all it holds as one
// frame, and starts a new frame rather than grow one past maxMerge or mix suggestions.
func TestHeldOutput(t *testing.T) {
	var sent []string
	o := heldOutput{stream: "s1", send: func(b *frameBuf) error {
		if b.stream != "s1" {
			t.Errorf("frame for stream %q", b.stream)
		}
		sent = append(sent, fmt.Sprintf("%d:%s", b.index, b.b))
		putBuf(b)
		return nil
	}}
	big := strings.Repeat("x", maxMerge-2)
	steps := []struct {
		index int
		text  string // "" is a flush
		want  []string
	}{
		{0, "a", nil},
		{0, "b", nil},
		{0, "", []string{"0:ab"}},
		{0, "", []string{"0:ab"}},
		{0, "c", []string{"0:ab"}},
		{0, big, []string{"0:ab"}},                      // c + big fits maxMerge
		{0, "de", []string{"0:ab", "0:c" + big}},        // would not: the held frame goes first
		{0, "", []string{"0:ab", "0:c" + big, "0:de"}},  //
		{2, "f", []string{"0:ab", "0:c" + big, "0:de"}}, // another suggestion
		{2, "g", []string{"0:ab", "0:c" + big, "0:de"}}, // held with f
		{1, "h", []string{"0:ab", "0:c" + big, "0:de", "2:fg"}},
		{1, "", []string{"0:ab", "0:c" + big, "0:de", "2:fg", "1:h"}},
	}
	for i, st := range steps {
		if err := o.write(st.index, []byte(st.text)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sent, st.want) {
			t.Fatalf("after step %d: sent %d frames, want %d", i, len(sent), len(st.want))
		}
	}
	if err := o.write(0, []byte("dropped")); err != nil {
		t.Fatal(err)
	}
	o.discard()
	if err := o.flush(); err != nil || len(sent) != 5 {
		t.Errorf("after discard: flush sent %d frames (err %v), want none", len(sent)-5, err)
	}
}

func TestCancelFreesLease(t *testing.T) {
	p, started, ended := blocking()
	cnt := newCounter()
	h := newHarness(t, setup{deps: Deps{Router: routeTo(p), Leases: cnt.leases()}})
	c := h.dial(h.token(nil))
	c.request("c1")
	recv(t, started, "provider call")
	c.send(wire.ClientFrame{Type: wire.TypeCancel, ID: "c1"})
	if err := recv(t, ended, "provider context end"); err != context.Canceled {
		t.Errorf("provider context: %v", err)
	}
	cnt.awaitRelease(t)
	c.expectError("c1", wire.CodeCanceled)
	// Cancelling an id that is gone is ignored; the connection goes on.
	c.send(wire.ClientFrame{Type: wire.TypeCancel, ID: "c1"})
	c.roundTrip("p1")
}

func TestDisconnectFreesLeases(t *testing.T) {
	p, started, ended := blocking()
	cnt := newCounter()
	h := newHarness(t, setup{deps: Deps{Router: routeTo(p), Leases: cnt.leases()}})
	c := h.dial(h.token(nil))
	for i := range 3 {
		c.request(fmt.Sprintf("c%d", i))
		recv(t, started, "provider call")
	}
	c.c.NetConn().Close() // no close frame: the client vanished
	for range 3 {
		recv(t, ended, "provider context end")
		cnt.awaitRelease(t)
	}
	if n := cnt.inUse("user-1"); n != 0 {
		t.Errorf("leases in use: %d", n)
	}
}

// TestMalformedFramesKeepConnection sends every invalid golden frame of shared/testdata and
// checks each gets its error while the connection stays usable.
func TestMalformedFramesKeepConnection(t *testing.T) {
	p, started, _ := blocking()
	h := newHarness(t, setup{deps: Deps{Router: routeTo(p)}})
	c := h.dial(h.token(nil))
	c.request("open") // a running stream that bad frames must not end
	recv(t, started, "provider call")

	paths, err := filepath.Glob("../../../shared/testdata/invalid/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no invalid goldens: %v", err)
	}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		code, _, _ := strings.Cut(filepath.Base(path), "-")
		c.sendRaw(string(bytes.TrimSuffix(data, []byte("\n"))))
		f := c.expect(wire.TypeError)
		if string(f.Code) != code || f.ID == "open" {
			t.Errorf("%s: got code %s id %q, want %s", filepath.Base(path), f.Code, f.ID, code)
		}
	}
	if err := c.c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	c.expectError("", wire.CodeBadRequest)
	// A bad request reusing the open stream's id does not name it.
	c.sendRaw(`{"type":"request","id":"open","op":"nope"}`)
	c.expectError("", wire.CodeBadRequest)
	// A bad request with a fresh id names it, so the client can end it.
	c.sendRaw(`{"type":"request","id":"x1","op":"nope"}`)
	c.expectError("x1", wire.CodeBadRequest)
	c.roundTrip("p1")
	c.send(wire.ClientFrame{Type: wire.TypeCancel, ID: "open"})
	c.expectError("open", wire.CodeCanceled)
}

func TestOversizeCloses(t *testing.T) {
	h := newHarness(t, setup{})
	tests := []struct {
		name string
		size int
		ok   bool
	}{
		{"at the limit", wire.MaxFrameBytes, true},
		{"one byte over", wire.MaxFrameBytes + 1, false},
		{"3 MiB", 3 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.dial(h.token(nil))
			// A ping padded with spaces to the size: valid JSON of exactly that many bytes.
			frame := `{"type":"ping","id":"big"}`
			c.sendRaw(frame + strings.Repeat(" ", tt.size-len(frame)))
			if tt.ok {
				c.expect(wire.TypePong)
				return
			}
			c.expectError("", wire.CodeTooLarge)
			c.expectClose(websocket.CloseMessageTooBig)
		})
	}
}

func TestInFlightCap(t *testing.T) {
	p, started, _ := blocking()
	h := newHarness(t, setup{cfg: Config{MaxInFlight: 2}, deps: Deps{Router: routeTo(p)}})
	c := h.dial(h.token(nil))
	c.request("c1")
	c.request("c2")
	recv(t, started, "provider call")
	recv(t, started, "provider call")
	c.request("c3")
	c.expectError("c3", wire.CodeBadRequest)
	// A duplicate id names no stream, and c1 keeps running.
	c.request("c1")
	c.expectError("", wire.CodeBadRequest)
	c.send(wire.ClientFrame{Type: wire.TypeCancel, ID: "c1"})
	c.expectError("c1", wire.CodeCanceled)
	c.request("c4")
	recv(t, started, "provider call after a slot freed")
	c.send(wire.ClientFrame{Type: wire.TypeCancel, ID: "c2"})
	c.expectError("c2", wire.CodeCanceled)
}

// TestSlowConsumer has a client stop reading while the provider floods; the stream must be
// cancelled and its lease released instead of the server buffering without bound.
func TestSlowConsumer(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	sinkErr := make(chan error, 1)
	p := &fakeProvider{stream: func(ctx context.Context, _ *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
		for {
			if err := sink(0, chunk); err != nil {
				sinkErr <- err
				return upstream.Result{}, err
			}
		}
	}}
	cnt := newCounter()
	h := newHarness(t, setup{cfg: Config{SendQueue: 8, SlowConsumer: 50 * time.Millisecond}, deps: Deps{Router: routeTo(p), Leases: cnt.leases()}})
	c := h.dial(h.token(nil))
	c.request("c1")
	// The client reads nothing until the server gave up on the stream.
	if err := recv(t, sinkErr, "sink error"); err != errSlowConsumer {
		t.Errorf("sink error: got %v, want errSlowConsumer", err)
	}
	cnt.awaitRelease(t)
	deltas := 0
	for {
		f, err := c.read()
		if err != nil {
			t.Fatalf("after %d deltas: %v", deltas, err)
		}
		if f.Type == wire.TypeDelta {
			deltas++
			continue
		}
		if f.Type != wire.TypeError || f.ID != "c1" || f.Code != wire.CodeCanceled {
			t.Fatalf("got %+v, want error canceled for c1", f)
		}
		break
	}
	t.Logf("%d deltas (%d KiB) were in flight when the stream was cancelled", deltas, deltas*64)
	c.roundTrip("p1")
}

// TestErrorMapping checks each collaborator error reaches the client as its wire code.
func TestErrorMapping(t *testing.T) {
	limitErr := &lease.LimitError{Limit: 1, InUse: 1, RetryAfter: 750 * time.Millisecond, Err: lease.ErrLimit}
	tests := []struct {
		name     string
		resolve  error
		acquire  error
		stream   error
		want     wire.Code
		check    func(t *testing.T, f wire.ServerFrame)
		queuedAt int // > 0: Acquire reports this position first
	}{
		{name: "unknown model", resolve: fmt.Errorf("%w: %q", upstream.ErrUnknownModel, "x"), want: wire.CodeBadRequest},
		{name: "model not in plan", resolve: fmt.Errorf("%w: %q", upstream.ErrNotAllowed, "x"), want: wire.CodeQuotaExceeded},
		{name: "rate limited", acquire: fmt.Errorf("acquire: %w", limitErr), want: wire.CodeRateLimited, queuedAt: 1,
			check: func(t *testing.T, f wire.ServerFrame) {
				if f.RetryAfterMS != 750 || f.Plan == nil || *f.Plan != (wire.Plan{Name: "pro", Concurrency: 1, InUse: 1}) {
					t.Errorf("rate limited frame: retry %d plan %+v", f.RetryAfterMS, f.Plan)
				}
			}},
		{name: "node busy", acquire: &lease.LimitError{Limit: 3, RetryAfter: time.Second, Err: lease.ErrNodeBusy}, want: wire.CodeRateLimited},
		{name: "pool closed", acquire: lease.ErrClosed, want: wire.CodeInternal},
		{name: "upstream unavailable", stream: fmt.Errorf("model %q: %w: dial tcp: refused", "m", upstream.ErrUnavailable), want: wire.CodeUpstreamUnavailable},
		{name: "upstream failed", stream: fmt.Errorf("model %q: %w: HTTP 500", "m", upstream.ErrFailed), want: wire.CodeUpstreamError},
		{name: "model cannot edit", stream: fmt.Errorf("local: %w: %w", upstream.ErrUnsupported, upstream.ErrFailed), want: wire.CodeBadRequest},
		{name: "anything else", stream: errTest, want: wire.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakeProvider{stream: func(context.Context, *upstream.Request, upstream.Sink) (upstream.Result, error) {
				return upstream.Result{}, tt.stream
			}}
			router := &fakeRouter{resolve: func(string, string) (upstream.Provider, error) {
				if tt.resolve != nil {
					return nil, tt.resolve
				}
				return p, nil
			}}
			cnt := newCounter()
			leases := cnt.leases()
			okAcquire := leases.acquire
			leases.acquire = func(ctx context.Context, user string, limit int, onQueued func(int)) (Lease, error) {
				if tt.queuedAt > 0 {
					onQueued(tt.queuedAt)
				}
				if tt.acquire != nil {
					return nil, tt.acquire
				}
				return okAcquire(ctx, user, limit, onQueued)
			}
			obs := &fakeObserver{ended: make(chan StreamStats, 1)}
			h := newHarness(t, setup{deps: Deps{Router: router, Leases: leases, Observer: obs}})
			c := h.dial(h.token(nil))
			c.request("c1")
			if tt.queuedAt > 0 {
				q := c.expect(wire.TypeQueued)
				if q.ID != "c1" || q.Position != tt.queuedAt || q.Plan == nil || q.Plan.Name != "pro" {
					t.Errorf("queued: %+v", q)
				}
			}
			f := c.expectError("c1", tt.want)
			if f.Message == "" || strings.Contains(f.Message, "refused") || strings.Contains(f.Message, "HTTP 500") {
				t.Errorf("message %q: want fixed text, not the internal error", f.Message)
			}
			if tt.check != nil {
				tt.check(t, f)
			}
			if s := recv(t, obs.ended, "stats"); s.Outcome != string(tt.want) {
				t.Errorf("outcome: got %s, want %s", s.Outcome, tt.want)
			}
			if n := cnt.inUse("user-1"); n != 0 {
				t.Errorf("lease held after error: %d", n)
			}
			c.roundTrip("p1")
		})
	}
}
