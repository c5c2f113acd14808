package gateway

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/revoke"
	wire "github.com/codingplan/codingplan/shared"
)

// fakeRevocations is a Revocations with a function field; nil revokes nothing.
type fakeRevocations struct {
	mu    sync.Mutex
	check func(sub, sid string, issued time.Time) (revoke.Status, error)
}

func (f *fakeRevocations) Check(_ context.Context, sub, sid string, issued time.Time) (revoke.Status, error) {
	f.mu.Lock()
	check := f.check
	f.mu.Unlock()
	if check == nil {
		return revoke.Status{}, nil
	}
	return check(sub, sid, issued)
}

func (f *fakeRevocations) set(check func(sub, sid string, issued time.Time) (revoke.Status, error)) {
	f.mu.Lock()
	f.check = check
	f.mu.Unlock()
}

// revokedSubject revokes every token of sub.
func revokedSubject(sub string) func(string, string, time.Time) (revoke.Status, error) {
	return func(s, _ string, _ time.Time) (revoke.Status, error) {
		return revoke.Status{Revoked: s == sub}, nil
	}
}

// expectRevoked reads past the frames of cancelled streams to the connection's error frame
// with code, then the close (1008).
func (c *client) expectRevoked(code wire.Code) {
	c.t.Helper()
	for {
		f, err := c.read()
		if err != nil {
			c.t.Fatalf("waiting for the revocation error: %v", err)
		}
		if f.Type == wire.TypeError && f.ID == "" {
			if f.Code != code {
				c.t.Fatalf("error frame: got %s (%s), want %s", f.Code, f.Message, code)
			}
			break
		}
	}
	c.expectClose(websocket.ClosePolicyViolation)
}

func TestRevokedAtUpgrade(t *testing.T) {
	rv := &fakeRevocations{}
	h := newHarness(t, setup{deps: Deps{Revocations: rv}})
	rv.set(revokedSubject("user-1"))
	_, resp, err := websocket.DefaultDialer.Dial(h.url, http.Header{"Authorization": {"Bearer " + h.token(nil)}})
	if err == nil {
		t.Fatal("upgrade with a revoked token succeeded")
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	if b := body(resp); !strings.Contains(b, `"code":"unauthorized"`) || !strings.Contains(b, msgRevokedToken) {
		t.Errorf("body %s", b)
	}
	// Another account connects.
	h.dial(h.token(func(c *auth.Claims) { c.Subject = "user-2" })).roundTrip("p1")
}

func TestRevocationCheckFailsOpen(t *testing.T) {
	rv := &fakeRevocations{}
	rv.set(func(string, string, time.Time) (revoke.Status, error) { return revoke.Status{}, errTest })
	h := newHarness(t, setup{deps: Deps{Revocations: rv}})
	h.dial(h.token(nil)).roundTrip("p1")
}

func TestPlanChangedBeforeUpgrade(t *testing.T) {
	rv := &fakeRevocations{}
	rv.set(func(string, string, time.Time) (revoke.Status, error) { return revoke.Status{Plan: "max"}, nil })
	h := newHarness(t, setup{deps: Deps{Revocations: rv}})
	c := h.dial(h.token(nil)) // a pro token
	if p := c.hello.Plan; p.Name != "max" || p.Concurrency != 10 {
		t.Errorf("hello plan %+v, want max/10", p)
	}
}

func TestRevokedAuthFrame(t *testing.T) {
	rv := &fakeRevocations{}
	h := newHarness(t, setup{deps: Deps{Revocations: rv}})
	c := h.dial(h.token(func(cl *auth.Claims) { cl.SID = "s1" }))
	rv.set(func(_, sid string, _ time.Time) (revoke.Status, error) {
		return revoke.Status{Revoked: sid == "s2"}, nil
	})
	c.send(wire.ClientFrame{Type: wire.TypeAuth, Token: wire.Secret(h.token(func(cl *auth.Claims) { cl.SID = "s2" }))})
	if f := c.expectError("", wire.CodeUnauthorized); f.Message != msgRevokedToken {
		t.Errorf("message %q", f.Message)
	}
	c.roundTrip("p1") // the connection keeps its previous token
}

func TestRevokeEvent(t *testing.T) {
	p, started, ended := blocking()
	cnt := newCounter()
	h := newHarness(t, setup{deps: Deps{Router: routeTo(p), Leases: cnt.leases(), Revocations: &fakeRevocations{}}})
	withSID := func(sid string) func(*auth.Claims) { return func(c *auth.Claims) { c.SID = sid } }
	a1 := h.dial(h.token(withSID("s1")))
	a2 := h.dial(h.token(withSID("s2")))
	other := h.dial(h.token(func(c *auth.Claims) { c.Subject = "user-2"; c.SID = "s1" }))
	a1.request("c1")
	recv(t, started, "provider call")
	ctx := context.Background()

	// One sign-in: only its socket closes, its stream stops and its lease is released.
	h.srv.Handle(ctx, revoke.Event{Sub: "user-1", SID: "s1", Kind: revoke.KindRevoke, At: t0.UnixMilli()})
	a1.expectRevoked(wire.CodeUnauthorized)
	if err := recv(t, ended, "provider context end"); err != context.Canceled {
		t.Errorf("provider context: %v", err)
	}
	cnt.awaitRelease(t)
	a2.roundTrip("p1")
	other.roundTrip("p1")

	// An event older than the token leaves it alone.
	h.srv.Handle(ctx, revoke.Event{Sub: "user-1", Kind: revoke.KindRevoke, At: t0.Add(-time.Minute).UnixMilli()})
	a2.roundTrip("p2")

	// The whole account.
	h.srv.Handle(ctx, revoke.Event{Sub: "user-1", Kind: revoke.KindRevoke, At: t0.UnixMilli()})
	a2.expectRevoked(wire.CodeUnauthorized)
	other.roundTrip("p3")
}

func TestPlanEvent(t *testing.T) {
	h := newHarness(t, setup{deps: Deps{Revocations: &fakeRevocations{}}})
	c := h.dial(h.token(nil))
	other := h.dial(h.token(func(c *auth.Claims) { c.Subject = "user-2" }))
	ctx := context.Background()
	h.srv.Handle(ctx, revoke.Event{Sub: "user-1", Kind: revoke.KindPlan, Plan: "lite", At: t0.UnixMilli()})
	if f := c.expect(wire.TypeHello); f.Plan.Name != "lite" || f.Plan.Concurrency != 1 {
		t.Errorf("hello plan %+v, want lite/1", f.Plan)
	}
	c.roundTrip("p1")
	other.roundTrip("p1") // got no hello
	h.srv.Handle(ctx, revoke.Event{Sub: "user-1", Kind: revoke.KindPlan, Plan: "enterprise", At: t0.UnixMilli()})
	c.expectRevoked(wire.CodeQuotaExceeded)
}

func TestResync(t *testing.T) {
	rv := &fakeRevocations{}
	h := newHarness(t, setup{deps: Deps{Revocations: rv}})
	c := h.dial(h.token(nil))
	upgraded := h.dial(h.token(func(c *auth.Claims) { c.Subject = "user-2" }))
	other := h.dial(h.token(func(c *auth.Claims) { c.Subject = "user-3" }))
	rv.set(func(sub, _ string, _ time.Time) (revoke.Status, error) {
		switch sub {
		case "user-1":
			return revoke.Status{Revoked: true}, nil
		case "user-2":
			return revoke.Status{Plan: "max"}, nil
		}
		return revoke.Status{}, nil
	})
	h.srv.Resync(context.Background())
	c.expectRevoked(wire.CodeUnauthorized)
	if f := upgraded.expect(wire.TypeHello); f.Plan.Name != "max" {
		t.Errorf("hello plan %+v, want max", f.Plan)
	}
	other.roundTrip("p1")
}

// An event handled between an upgrade's check and its session's registration is not lost:
// the new session is checked again.
func TestRevokeEventDuringUpgrade(t *testing.T) {
	rv := &fakeRevocations{}
	h := newHarness(t, setup{deps: Deps{Revocations: rv}})
	checking, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	rv.set(func(string, string, time.Time) (revoke.Status, error) {
		first := false
		once.Do(func() { first = true })
		if !first {
			return revoke.Status{Revoked: true}, nil // the recheck: the key is set by now
		}
		close(checking)
		<-release
		return revoke.Status{}, nil // the check ran before the publish
	})
	type dialed struct {
		c   *websocket.Conn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		c, _, err := websocket.DefaultDialer.Dial(h.url, http.Header{"Authorization": {"Bearer " + h.token(nil)}})
		done <- dialed{c, err}
	}()
	recv(t, checking, "the upgrade's check")
	h.srv.Handle(context.Background(), revoke.Event{Sub: "user-1", Kind: revoke.KindRevoke, At: t0.UnixMilli()})
	close(release)
	d := recv(t, done, "the upgrade")
	if d.err != nil {
		t.Fatalf("dial: %v", d.err)
	}
	t.Cleanup(func() { d.c.Close() })
	(&client{t: t, c: d.c}).expectRevoked(wire.CodeUnauthorized)
}
