package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
	"github.com/codingplan/codingplan/shared/clock/clocktest"
)

func TestUpgradeRejected(t *testing.T) {
	h := newHarness(t, setup{cfg: Config{AllowedOrigins: []string{"https://ide.example.com"}}})
	good := h.token(nil)
	tests := []struct {
		name     string
		header   http.Header
		protos   []string
		status   int
		wantCode wire.Code
	}{
		{"no token", nil, nil, 401, wire.CodeUnauthorized},
		{"garbage token", http.Header{"Authorization": {"Bearer not.a.jwt"}}, nil, 401, wire.CodeUnauthorized},
		{"basic auth", http.Header{"Authorization": {"Basic dXNlcjpwdw=="}}, nil, 401, wire.CodeUnauthorized},
		{"expired", http.Header{"Authorization": {"Bearer " + h.token(func(c *auth.Claims) {
			c.ExpiresAt = jwt.NewNumericDate(t0.Add(-time.Hour))
		})}}, nil, 401, wire.CodeTokenExpired},
		{"wrong audience", http.Header{"Authorization": {"Bearer " + h.token(func(c *auth.Claims) {
			c.Audience = jwt.ClaimStrings{"other"}
		})}}, nil, 401, wire.CodeUnauthorized},
		{"unknown plan", http.Header{"Authorization": {"Bearer " + h.token(func(c *auth.Claims) { c.Plan = "gold" })}}, nil, 403, wire.CodeQuotaExceeded},
		{"foreign origin", http.Header{"Authorization": {"Bearer " + good}, "Origin": {"https://evil.example.com"}}, nil, 403, wire.CodeUnauthorized},
		{"token subprotocol without codingplan.v1", nil, []string{wire.TokenSubprotocolPrefix + good}, 401, wire.CodeUnauthorized},
		{"bad token in subprotocol", nil, []string{wire.Subprotocol, wire.TokenSubprotocolPrefix + "x.y.z"}, 401, wire.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: tt.protos}
			c, resp, err := d.Dial(h.url, tt.header)
			if err == nil {
				c.Close()
				t.Fatal("upgrade accepted")
			}
			if resp == nil {
				t.Fatalf("no HTTP response: %v", err)
			}
			if resp.StatusCode != tt.status {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type: got %q", ct)
			}
			var b rejectBody
			if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if b.Code != tt.wantCode || b.Message == "" {
				t.Errorf("body: got %+v, want code %s and a message", b, tt.wantCode)
			}
		})
	}
}

func TestUpgradeAccepted(t *testing.T) {
	h := newHarness(t, setup{cfg: Config{AllowedOrigins: []string{"https://ide.example.com"}}})
	token := h.token(nil)
	tests := []struct {
		name      string
		header    http.Header
		protos    []string
		wantProto string
	}{
		{"bearer header", http.Header{"Authorization": {"Bearer " + token}}, nil, ""},
		{"bearer header with subprotocol", http.Header{"Authorization": {"Bearer " + token}}, []string{wire.Subprotocol}, wire.Subprotocol},
		{"token subprotocol", nil, []string{wire.Subprotocol, wire.TokenSubprotocolPrefix + token}, wire.Subprotocol},
		{"token subprotocol first", nil, []string{wire.TokenSubprotocolPrefix + token, wire.Subprotocol}, wire.Subprotocol},
		{"allowed origin", http.Header{"Authorization": {"Bearer " + token}, "Origin": {"https://ide.example.com"}}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: tt.protos}
			c, resp, err := d.Dial(h.url, tt.header)
			if err != nil {
				t.Fatalf("dial: %v (%s)", err, body(resp))
			}
			defer c.Close()
			if got := resp.Header.Values("Sec-WebSocket-Protocol"); strings.Join(got, ",") != tt.wantProto {
				t.Errorf("subprotocol reply: got %q, want %q (never the token)", got, tt.wantProto)
			}
			cl := &client{t: t, c: c}
			cl.expect(wire.TypeHello)
			cl.roundTrip("p1")
		})
	}
}

func TestHello(t *testing.T) {
	leases := &fakeLeases{inUse: func(_ context.Context, user string) (int, error) {
		if user != "user-1" {
			return 0, errTest
		}
		return 2, nil
	}}
	router := namedRouter{routeTo(nil), "fast"}
	h := newHarness(t, setup{cfg: Config{MaxInFlight: 4, Server: "codingplan-backend/test"}, deps: Deps{Leases: leases, Router: router}})
	c := h.dial(h.token(nil))
	want := wire.ServerFrame{
		Type: wire.TypeHello, Protocol: wire.Version, Server: "codingplan-backend/test",
		Limits:    &wire.Limits{MaxFrameBytes: wire.MaxFrameBytes, MaxInFlight: 4},
		Plan:      &wire.Plan{Name: "pro", Concurrency: 3, InUse: 2},
		ExpiresAt: t0.Add(time.Hour).Unix(),
	}
	got, _ := wire.Marshal(c.hello)
	wantJSON, _ := wire.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Errorf("hello:\ngot  %s\nwant %s", got, wantJSON)
	}
}

// namedRouter is a Router that names its default model, as upstream.Router does.
type namedRouter struct {
	*fakeRouter
	model string
}

func (n namedRouter) DefaultModel() string { return n.model }

func TestTokenExpiryCloses(t *testing.T) {
	p, started, ended := blocking()
	cnt := newCounter()
	clock := clocktest.New(t0)
	h := newHarness(t, setup{deps: Deps{Router: routeTo(p), Leases: cnt.leases(), Clock: clock}})
	c := h.dial(h.token(nil))
	expiry := clock.Await(t, time.Hour) // exp - now
	c.request("c1")
	recv(t, started, "provider call")
	expiry.Fire()
	c.expectError("", wire.CodeTokenExpired)
	c.expectClose(websocket.ClosePolicyViolation)
	recv(t, ended, "provider context end")
	cnt.awaitRelease(t)
}

func TestAuthRefresh(t *testing.T) {
	clock := clocktest.New(t0)
	h := newHarness(t, setup{deps: Deps{Clock: clock}})
	c := h.dial(h.token(nil))
	old := clock.Await(t, time.Hour)

	// A bad token, or one for another user, changes nothing.
	c.send(wire.ClientFrame{Type: wire.TypeAuth, Token: "x.y.z"})
	c.expectError("", wire.CodeUnauthorized)
	c.send(wire.ClientFrame{Type: wire.TypeAuth, Token: wire.Secret(h.token(func(cl *auth.Claims) { cl.Subject = "user-2" }))})
	c.expectError("", wire.CodeUnauthorized)
	c.send(wire.ClientFrame{Type: wire.TypeAuth, Token: wire.Secret(h.token(func(cl *auth.Claims) {
		cl.ExpiresAt = jwt.NewNumericDate(t0.Add(-time.Hour))
	}))})
	c.expectError("", wire.CodeTokenExpired)
	c.roundTrip("p1")

	// A fresh token for the same user: a new hello, a new timer.
	exp := t0.Add(2 * time.Hour)
	c.send(wire.ClientFrame{Type: wire.TypeAuth, Token: wire.Secret(h.token(func(cl *auth.Claims) {
		cl.ExpiresAt = jwt.NewNumericDate(exp)
		cl.Plan = "max"
	}))})
	hello := c.expect(wire.TypeHello)
	if hello.ExpiresAt != exp.Unix() || hello.Plan == nil || hello.Plan.Name != "max" || hello.Plan.Concurrency != 10 {
		t.Errorf("hello after auth: got expires_at=%d plan=%+v", hello.ExpiresAt, hello.Plan)
	}
	renewed := clock.Await(t, 2*time.Hour)
	// The old timer firing late does nothing.
	old.Fire()
	c.roundTrip("p2")
	// The new one closes.
	renewed.Fire()
	c.expectError("", wire.CodeTokenExpired)
	c.expectClose(websocket.ClosePolicyViolation)
}

func TestGoawayOnDrain(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	p := &fakeProvider{stream: func(ctx context.Context, _ *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
		started <- struct{}{}
		<-release
		if err := sink(0, []byte("tail")); err != nil {
			return upstream.Result{}, err
		}
		return upstream.Result{FinishReason: wire.FinishStop}, nil
	}}
	cnt := newCounter()
	h := newHarness(t, setup{deps: Deps{Router: routeTo(p), Leases: cnt.leases()}})
	busy := h.dial(h.token(nil))
	idle := h.dial(h.token(nil))
	busy.request("c1")
	recv(t, started, "provider call")

	shutdown := make(chan error, 1)
	go func() { shutdown <- h.srv.Shutdown(context.Background()) }()

	// The idle connection gets goaway and is closed at once.
	if f := idle.expect(wire.TypeGoaway); f.Reason != "shutdown" {
		t.Errorf("goaway reason: %q", f.Reason)
	}
	idle.expectClose(websocket.CloseGoingAway)
	// The busy one gets goaway, refuses new requests, and finishes its stream.
	busy.expect(wire.TypeGoaway)
	busy.request("c2")
	busy.expectError("c2", wire.CodeInternal)
	// New connections are refused.
	if _, resp, err := websocket.DefaultDialer.Dial(h.url, http.Header{"Authorization": {"Bearer " + h.token(nil)}}); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial while draining: got %v, %s; want 503", err, body(resp))
	}
	close(release)
	if f := busy.expect(wire.TypeDelta); f.ID != "c1" || f.Text != "tail" {
		t.Errorf("delta: %+v", f)
	}
	busy.expect(wire.TypeDone)
	busy.expectClose(websocket.CloseGoingAway)
	if err := recv(t, shutdown, "shutdown"); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := cnt.inUse("user-1"); n != 0 {
		t.Errorf("leases in use after drain: %d", n)
	}
}

func TestDrainDeadlineCancelsStreams(t *testing.T) {
	p, started, ended := blocking()
	cnt := newCounter()
	h := newHarness(t, setup{deps: Deps{Router: routeTo(p), Leases: cnt.leases()}})
	c := h.dial(h.token(nil))
	c.request("c1")
	recv(t, started, "provider call")
	ctx, cancel := context.WithCancel(context.Background())
	shutdown := make(chan error, 1)
	go func() { shutdown <- h.srv.Shutdown(ctx) }()
	c.expect(wire.TypeGoaway)
	cancel() // the drain deadline passes
	c.expectError("c1", wire.CodeInternal)
	c.expectClose(websocket.CloseGoingAway)
	recv(t, ended, "provider context end")
	if err := recv(t, shutdown, "shutdown"); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: got %v, want context.Canceled", err)
	}
	if n := cnt.inUse("user-1"); n != 0 {
		t.Errorf("leases in use: %d", n)
	}
}
