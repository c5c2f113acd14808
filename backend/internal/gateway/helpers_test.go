package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// wait bounds every wait for an event in these tests.
const wait = 10 * time.Second

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeLeases is a Leaser with function fields; nil fields use a counting limiter that never
// waits.
type fakeLeases struct {
	acquire func(ctx context.Context, user string, limit int, onQueued func(int)) (Lease, error)
	inUse   func(ctx context.Context, user string) (int, error)
}

func (f *fakeLeases) Acquire(ctx context.Context, user string, limit int, onQueued func(int)) (Lease, error) {
	return f.acquire(ctx, user, limit, onQueued)
}

func (f *fakeLeases) InUse(ctx context.Context, user string) (int, error) { return f.inUse(ctx, user) }

// fakeLease is a Lease with a function field; lose calls what OnLost registered.
type fakeLease struct {
	once     sync.Once
	release  func()
	released chan struct{} // closed by release, when the test set it up so

	mu     sync.Mutex
	onLost func(error)
}

func (l *fakeLease) Release()    { l.once.Do(l.release) }
func (l *fakeLease) ReleaseNow() { l.once.Do(l.release) }

func (l *fakeLease) OnLost(f func(error)) {
	l.mu.Lock()
	l.onLost = f
	l.mu.Unlock()
}

func (l *fakeLease) lose(err error) {
	l.mu.Lock()
	f := l.onLost
	l.mu.Unlock()
	if f != nil {
		f(err)
	}
}

// counter is a limiter for fakeLeases that reports every release on a channel.
type counter struct {
	mu       sync.Mutex
	n        map[string]int
	released chan string
}

func newCounter() *counter { return &counter{n: map[string]int{}, released: make(chan string, 100)} }

func (c *counter) leases() *fakeLeases {
	return &fakeLeases{
		acquire: func(_ context.Context, user string, limit int, _ func(int)) (Lease, error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.n[user]++
			return &fakeLease{release: func() {
				c.mu.Lock()
				c.n[user]--
				c.mu.Unlock()
				c.released <- user
			}}, nil
		},
		inUse: func(_ context.Context, user string) (int, error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.n[user], nil
		},
	}
}

func (c *counter) inUse(user string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[user]
}

// awaitRelease waits for one release.
func (c *counter) awaitRelease(t *testing.T) {
	t.Helper()
	select {
	case <-c.released:
	case <-time.After(wait):
		t.Fatal("lease not released")
	}
}

// fakeRouter is a Router with a function field.
type fakeRouter struct {
	resolve func(plan, model string) (upstream.Provider, error)
}

func (f *fakeRouter) Resolve(plan, model string) (upstream.Provider, error) {
	return f.resolve(plan, model)
}

// fakeProvider is an upstream.Provider with a function field. Unless hold is set, each
// piece of output its function passes to the sink is followed by a flush, as a real
// provider does when it waits after each piece (see upstream.Sink).
type fakeProvider struct {
	stream func(ctx context.Context, req *upstream.Request, sink upstream.Sink) (upstream.Result, error)
	hold   bool
}

func (f *fakeProvider) Stream(ctx context.Context, req *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
	if f.hold {
		return f.stream(ctx, req, sink)
	}
	return f.stream(ctx, req, func(i int, p []byte) error {
		if err := sink(i, p); err != nil || len(p) == 0 {
			return err
		}
		return sink(i, nil)
	})
}

func routeTo(p upstream.Provider) *fakeRouter {
	return &fakeRouter{resolve: func(string, string) (upstream.Provider, error) { return p, nil }}
}

// blocking returns a provider that signals each call on started and runs until its context
// ends, then reports the context's error on ended.
func blocking() (p *fakeProvider, started chan *upstream.Request, ended chan error) {
	started, ended = make(chan *upstream.Request, 32), make(chan error, 32)
	p = &fakeProvider{stream: func(ctx context.Context, req *upstream.Request, _ upstream.Sink) (upstream.Result, error) {
		started <- req
		<-ctx.Done()
		ended <- ctx.Err()
		return upstream.Result{}, ctx.Err()
	}}
	return p, started, ended
}

// fakeObserver records stream outcomes.
type fakeObserver struct {
	ended chan StreamStats
}

func (o *fakeObserver) Connection(int)         {}
func (o *fakeObserver) StreamStarted()         {}
func (o *fakeObserver) Revoked()               {}
func (o *fakeObserver) RevocationCheckFailed() {}
func (o *fakeObserver) Refused(string)         {}
func (o *fakeObserver) StreamEnded(s StreamStats) {
	select {
	case o.ended <- s:
	default:
	}
}

// harness is a gateway behind an httptest server, with a real token verifier.
type harness struct {
	t    testing.TB
	srv  *Server
	http *httptest.Server
	url  string
	priv ed25519.PrivateKey
	kid  string
}

type setup struct {
	cfg  Config
	deps Deps
}

func newHarness(t testing.TB, s setup) *harness {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid := auth.Thumbprint(priv.Public().(ed25519.PublicKey))
	data, _ := json.Marshal(auth.JWKS{Keys: []auth.JWK{auth.PublicJWK(kid, priv.Public().(ed25519.PublicKey))}})
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(context.Background(), auth.Config{JWKS: path, Now: func() time.Time { return t0 }}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Plans == nil {
		s.cfg.Plans = map[string]int{"lite": 1, "pro": 3, "max": 10}
	}
	s.deps.Verifier = v
	if s.deps.Leases == nil {
		s.deps.Leases = newCounter().leases()
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := New(s.cfg, s.deps, log)
	hs := httptest.NewServer(srv)
	h := &harness{t: t, srv: srv, http: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http") + wire.Path, priv: priv, kid: kid}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	return h
}

// token mints a token; edit may change its claims.
func (h *harness) token(edit func(c *auth.Claims)) string {
	h.t.Helper()
	c := &auth.Claims{Plan: "pro", RegisteredClaims: jwt.RegisteredClaims{
		Subject: "user-1", Issuer: auth.DefaultIssuer, Audience: jwt.ClaimStrings{auth.DefaultAudience},
		IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
	}}
	if edit != nil {
		edit(c)
	}
	s, err := auth.Sign(h.priv, h.kid, c)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// client is a test websocket client.
type client struct {
	t     testing.TB
	c     *websocket.Conn
	hello wire.ServerFrame
}

// dial connects with a bearer header and reads the hello frame.
func (h *harness) dial(token string) *client {
	h.t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(h.url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		h.t.Fatalf("dial: %v (%s)", err, body(resp))
	}
	h.t.Cleanup(func() { c.Close() })
	cl := &client{t: h.t, c: c}
	cl.hello = cl.expect(wire.TypeHello)
	return cl
}

func body(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b)
}

// sendRaw writes one text message.
func (c *client) sendRaw(data string) {
	c.t.Helper()
	if err := c.c.WriteMessage(websocket.TextMessage, []byte(data)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(f wire.ClientFrame) {
	c.t.Helper()
	data, err := wire.Marshal(f)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(data))
}

// request sends a completion request with id.
func (c *client) request(id string) {
	c.t.Helper()
	c.send(wire.ClientFrame{Type: wire.TypeRequest, ID: id, Op: wire.OpCompletion, Model: "default",
		Completion: &wire.Completion{Prefix: "func add(a, b int) int {\n\treturn ", Language: "go"}})
}

// read returns the next frame, or the error that ended the connection.
func (c *client) read() (wire.ServerFrame, error) {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(wait))
	mt, data, err := c.c.ReadMessage()
	if err != nil {
		return wire.ServerFrame{}, err
	}
	if mt != websocket.TextMessage {
		c.t.Fatalf("message type %d", mt)
	}
	f, err := wire.DecodeServer(data)
	if err != nil {
		c.t.Fatalf("decode %s: %v", data, err)
	}
	return f, nil
}

// expect reads the next frame and checks its type.
func (c *client) expect(typ string) wire.ServerFrame {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", typ, err)
	}
	if f.Type != typ {
		c.t.Fatalf("got %s frame %+v, want %s", f.Type, f, typ)
	}
	return f
}

// expectError reads an error frame and checks its id and code.
func (c *client) expectError(id string, code wire.Code) wire.ServerFrame {
	c.t.Helper()
	f := c.expect(wire.TypeError)
	if f.ID != id || f.Code != code {
		c.t.Fatalf("error frame: got id=%q code=%s (%s), want id=%q code=%s", f.ID, f.Code, f.Message, id, code)
	}
	return f
}

// expectClose reads until the connection closes and checks the close code.
func (c *client) expectClose(code int) {
	c.t.Helper()
	f, err := c.read()
	if err == nil {
		c.t.Fatalf("got %s frame %+v, want close %d", f.Type, f, code)
	}
	if !websocket.IsCloseError(err, code) {
		c.t.Fatalf("got %v, want close %d", err, code)
	}
}

// roundTrip checks the connection still works: a ping gets its pong.
func (c *client) roundTrip(id string) {
	c.t.Helper()
	c.send(wire.ClientFrame{Type: wire.TypePing, ID: id})
	if f := c.expect(wire.TypePong); f.ID != id {
		c.t.Fatalf("pong id: got %q, want %q", f.ID, id)
	}
}

func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

var errTest = errors.New("test")
