package gateway

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/codingplan/codingplan/backend/internal/lease"
	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// gatedLeases is a Leaser whose Acquire waits for the test: each call reports on calls, then
// takes what the test sends on answer (after calling onQueued when queue is set).
type gatedLeases struct {
	calls   chan struct{}
	answers chan leaseAnswer
	granted atomic.Int32 // leases granted so far
}

type leaseAnswer struct {
	queue bool  // report a queue position first, then wait for the next answer
	err   error // refuse with this error
}

func newGatedLeases() *gatedLeases {
	return &gatedLeases{calls: make(chan struct{}, 8), answers: make(chan leaseAnswer)}
}

func (g *gatedLeases) leaser() *fakeLeases {
	return &fakeLeases{inUse: func(context.Context, string) (int, error) { return 0, nil }, acquire: func(ctx context.Context, _ string, _ int, onQueued func(int)) (Lease, error) {
		g.calls <- struct{}{}
		for {
			var a leaseAnswer
			select {
			case a = <-g.answers:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			switch {
			case a.queue:
				onQueued(1)
				continue
			case a.err != nil:
				return nil, a.err
			}
			g.granted.Add(1)
			return &fakeLease{release: func() {}}, nil
		}
	}}
}

// earlyProvider reports each call's start and end, and checks that its output is taken only
// once a lease was granted: the gateway's sink holds an early call's output until then.
type earlyProvider struct {
	leases  *gatedLeases
	started chan int   // the granted count when a call started
	ended   chan error // the cause a call ended with (nil: it finished)
	bad     atomic.Bool
	stats   *fakeObserver
}

func (p *earlyProvider) provider() *fakeProvider {
	return &fakeProvider{stream: func(ctx context.Context, _ *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
		p.started <- int(p.leases.granted.Load())
		before := p.leases.granted.Load()
		err := sink([]byte("early bird"))
		if err == nil && p.leases.granted.Load() == before && before == 0 {
			p.bad.Store(true) // output went through before any lease was granted
		}
		if err != nil {
			p.ended <- context.Cause(ctx)
			return upstream.Result{}, err
		}
		p.ended <- nil
		return upstream.Result{FinishReason: wire.FinishStop}, nil
	}}
}

func newEarly(t *testing.T, early bool) (*client, *gatedLeases, *earlyProvider) {
	t.Helper()
	g := newGatedLeases()
	p := &earlyProvider{leases: g, started: make(chan int, 8), ended: make(chan error, 8), stats: &fakeObserver{ended: make(chan StreamStats, 8)}}
	h := newHarness(t, setup{cfg: Config{EarlyStart: early}, deps: Deps{Router: routeTo(p.provider()), Leases: g.leaser(), Observer: p.stats}})
	return h.dial(h.token(nil)), g, p
}

// expectEarly checks what the next finished stream reports of its early start.
func (p *earlyProvider) expectEarly(t *testing.T, want string) {
	t.Helper()
	if s := recv(t, p.stats.ended, "stream stats"); s.Early != want {
		t.Errorf("stats say early %q, want %q", s.Early, want)
	}
}

// TestEarlyStart checks the provider call starts while the lease is being acquired, and that
// its output reaches the client only after the lease was granted.
func TestEarlyStart(t *testing.T) {
	c, g, p := newEarly(t, true)
	c.request("c1")
	recv(t, g.calls, "lease request")
	if n := recv(t, p.started, "provider call"); n != 0 {
		t.Fatalf("the provider call started after %d grants, want it to start before the lease is granted", n)
	}
	g.answers <- leaseAnswer{}
	if f := c.expect(wire.TypeDelta); string(f.Text) != "early bird" {
		t.Errorf("delta %q", string(f.Text))
	}
	c.expect(wire.TypeDone)
	if err := recv(t, p.ended, "provider end"); err != nil {
		t.Errorf("provider call ended with %v", err)
	}
	if p.bad.Load() {
		t.Error("output passed the sink before the lease was granted")
	}
	p.expectEarly(t, EarlyUsed)
}

// TestEarlyStartOff checks that without early_start the call waits for the lease.
func TestEarlyStartOff(t *testing.T) {
	c, g, p := newEarly(t, false)
	c.request("c1")
	recv(t, g.calls, "lease request")
	g.answers <- leaseAnswer{}
	if n := recv(t, p.started, "provider call"); n != 1 {
		t.Fatalf("the provider call started after %d grants, want 1", n)
	}
	c.expect(wire.TypeDelta)
	c.expect(wire.TypeDone)
	p.expectEarly(t, "")
}

// TestEarlyStartQueued checks an early call is cancelled when the request has to queue, made
// again once the lease is granted, and that the connection's next request does not start
// early (its last lease was not granted at once).
func TestEarlyStartQueued(t *testing.T) {
	c, g, p := newEarly(t, true)
	c.request("c1")
	recv(t, g.calls, "lease request")
	recv(t, p.started, "early provider call")
	g.answers <- leaseAnswer{queue: true}
	if err := recv(t, p.ended, "early call's end"); !errors.Is(err, errEarlyQueued) {
		t.Fatalf("early call ended with %v, want errEarlyQueued", err)
	}
	c.expect(wire.TypeQueued)
	g.answers <- leaseAnswer{}
	if n := recv(t, p.started, "provider call after the queue"); n != 1 {
		t.Fatalf("second call started after %d grants, want 1", n)
	}
	if f := c.expect(wire.TypeDelta); string(f.Text) != "early bird" {
		t.Errorf("delta %q", string(f.Text))
	}
	c.expect(wire.TypeDone)
	p.expectEarly(t, EarlyCancelled)

	c.request("c2")
	recv(t, g.calls, "second lease request")
	g.answers <- leaseAnswer{}
	if n := recv(t, p.started, "provider call of the next request"); n != 2 {
		t.Fatalf("next request's call started after %d grants, want 2: no early start after a queued lease", n)
	}
	c.expect(wire.TypeDelta)
	c.expect(wire.TypeDone)
}

// TestEarlyStartRefused checks a refused lease cancels the early call and the client gets
// rate_limited and no output.
func TestEarlyStartRefused(t *testing.T) {
	c, g, p := newEarly(t, true)
	c.request("c1")
	recv(t, g.calls, "lease request")
	recv(t, p.started, "early provider call")
	g.answers <- leaseAnswer{err: &lease.LimitError{Limit: 1, InUse: 1, Err: lease.ErrLimit}}
	if err := recv(t, p.ended, "early call's end"); !errors.Is(err, lease.ErrLimit) {
		t.Errorf("early call ended with %v, want the lease's error", err)
	}
	c.expectError("c1", wire.CodeRateLimited)
	if p.bad.Load() {
		t.Error("output passed the sink before the lease was granted")
	}
	p.expectEarly(t, EarlyCancelled)
}

// TestEarlyStartAfterCancel checks a request cancelled while its lease was acquired does not
// stop the connection's next request from starting early: a cancel says nothing of the slots.
func TestEarlyStartAfterCancel(t *testing.T) {
	c, g, p := newEarly(t, true)
	c.request("c1")
	recv(t, g.calls, "lease request")
	recv(t, p.started, "early provider call")
	c.send(wire.ClientFrame{Type: wire.TypeCancel, ID: "c1"})
	if err := recv(t, p.ended, "early call's end"); !errors.Is(err, errClientCanceled) {
		t.Errorf("early call ended with %v, want the client's cancel", err)
	}
	c.expectError("c1", wire.CodeCanceled)
	p.expectEarly(t, EarlyCancelled)

	c.request("c2")
	recv(t, g.calls, "second lease request")
	if n := recv(t, p.started, "second provider call"); n != 0 {
		t.Fatalf("second call started after %d grants, want it early", n)
	}
	g.answers <- leaseAnswer{}
	c.expect(wire.TypeDelta)
	c.expect(wire.TypeDone)
	p.expectEarly(t, EarlyUsed)
}
