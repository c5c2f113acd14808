package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/lease"
	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// gatedLeases is a Leaser whose Acquire waits for the test: each call reports on calls, then
// takes what the test sends on answer (after calling onQueued when queue is set).
type gatedLeases struct {
	calls   chan struct{}
	answers chan leaseAnswer
	leases  chan *fakeLease // every lease granted
	granted atomic.Int32    // leases granted so far
}

type leaseAnswer struct {
	queue bool  // report a queue position first, then wait for the next answer
	err   error // refuse with this error
}

func newGatedLeases() *gatedLeases {
	return &gatedLeases{calls: make(chan struct{}, 8), answers: make(chan leaseAnswer), leases: make(chan *fakeLease, 8)}
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
			l := &fakeLease{released: make(chan struct{})}
			l.release = func() { close(l.released) }
			g.leases <- l
			return l, nil
		}
	}}
}

// gatedProvider reports each call's start (with the leases granted by then) and end, and
// streams until its context ends when hold is set.
type gatedProvider struct {
	leases  *gatedLeases
	hold    bool
	started chan int   // the granted count when a call started
	ended   chan error // the cause a call ended with (nil: it finished)
}

func (p *gatedProvider) provider() *fakeProvider {
	return &fakeProvider{stream: func(ctx context.Context, _ *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
		p.started <- int(p.leases.granted.Load())
		err := sink(0, []byte("one"))
		if err == nil {
			err = sink(0, nil)
		}
		if err == nil && p.hold {
			<-ctx.Done()
			err = ctx.Err()
		}
		if err != nil {
			p.ended <- context.Cause(ctx)
			return upstream.Result{}, err
		}
		p.ended <- nil
		return upstream.Result{FinishReason: wire.FinishStop}, nil
	}}
}

func newGated(t *testing.T, hold bool) (*client, *gatedLeases, *gatedProvider) {
	t.Helper()
	g := newGatedLeases()
	p := &gatedProvider{leases: g, hold: hold, started: make(chan int, 8), ended: make(chan error, 8)}
	h := newHarness(t, setup{deps: Deps{Router: routeTo(p.provider()), Leases: g.leaser()}})
	return h.dial(h.token(nil)), g, p
}

// TestProviderAfterLease checks the provider sees a request only once its lease is granted,
// also after the request queued: the plan's limit holds at the provider.
func TestProviderAfterLease(t *testing.T) {
	c, g, p := newGated(t, false)
	c.request("c1")
	recv(t, g.calls, "lease request")
	select {
	case <-p.started:
		t.Fatal("the provider call started before the lease was granted")
	default:
	}
	g.answers <- leaseAnswer{queue: true}
	c.expect(wire.TypeQueued)
	g.answers <- leaseAnswer{}
	if n := recv(t, p.started, "provider call"); n != 1 {
		t.Fatalf("the provider call started after %d grants, want 1", n)
	}
	c.expect(wire.TypeDelta)
	c.expect(wire.TypeDone)
}

// TestRefusedNeverReachesProvider checks a refused lease ends the request with the lease's
// error and no provider call.
func TestRefusedNeverReachesProvider(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code wire.Code
	}{
		{"limit", &lease.LimitError{Limit: 1, InUse: 1, Err: lease.ErrLimit}, wire.CodeRateLimited},
		{"outage", &lease.LimitError{Limit: 0, RetryAfter: time.Second, Err: lease.ErrDegraded}, wire.CodeInternal},
		{"recovering", &lease.LimitError{Limit: 2, RetryAfter: 9 * time.Second, Err: lease.ErrRecovering}, wire.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, g, p := newGated(t, false)
			c.request("c1")
			recv(t, g.calls, "lease request")
			g.answers <- leaseAnswer{err: tc.err}
			f := c.expectError("c1", tc.code)
			var le *lease.LimitError
			errors.As(tc.err, &le)
			if want := max(le.RetryAfter.Milliseconds(), 1); tc.code != wire.CodeRateLimited && f.RetryAfterMS != want {
				t.Errorf("retry_after_ms = %d, want %d", f.RetryAfterMS, want)
			}
			select {
			case <-p.started:
				t.Error("a refused request reached the provider")
			default:
			}
		})
	}
}

// TestLostLeaseStopsStream checks a lease lost while its stream runs cancels the provider call
// with the lease's error and tells the client why.
func TestLostLeaseStopsStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code wire.Code
	}{
		{"unconfirmed", fmt.Errorf("%w: not confirmed: %w", lease.ErrLost, lease.ErrDegraded), wire.CodeInternal},
		{"no longer fits", fmt.Errorf("%w: limit in use: %w", lease.ErrLost, lease.ErrLimit), wire.CodeRateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, g, p := newGated(t, true)
			c.request("c1")
			recv(t, g.calls, "lease request")
			g.answers <- leaseAnswer{}
			recv(t, p.started, "provider call")
			c.expect(wire.TypeDelta)
			l := recv(t, g.leases, "the granted lease")
			l.lose(tc.err)
			if err := recv(t, p.ended, "provider call's end"); !errors.Is(err, lease.ErrLost) {
				t.Errorf("provider call ended with %v, want the lost lease's error", err)
			}
			c.expectError("c1", tc.code)
			recv(t, l.released, "the lost lease's release")
		})
	}
}
