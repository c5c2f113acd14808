package remote

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	wire "github.com/codingplan/codingplan/shared"
)

// fakeBackend speaks the backend's side of the protocol over a real websocket: it checks the
// bearer token at the upgrade (401 with a JSON body otherwise), says hello, answers auth and
// ping frames, and hands every other client frame to the test.
type fakeBackend struct {
	t        testing.TB
	srv      *httptest.Server
	upgrader websocket.Upgrader
	wg       sync.WaitGroup

	mu      sync.Mutex
	tokens  map[string]bool
	refuse  int  // answer this many upgrades with 503
	mute    bool // after hello, neither read nor answer pings
	open    []*fakeConn
	plan    wire.Plan
	headers []http.Header

	conns    chan *fakeConn // each accepted connection
	upgrades chan int       // the HTTP status of each upgrade attempt
}

type fakeConn struct {
	ws     *websocket.Conn
	wmu    sync.Mutex
	frames chan wire.ClientFrame // requests and cancels
	auths  chan wire.Secret
	pings  chan struct{}
	closed chan struct{}
}

func newFakeBackend(t testing.TB, tokens ...string) *fakeBackend {
	t.Helper()
	b := &fakeBackend{
		t:        t,
		tokens:   map[string]bool{},
		plan:     wire.Plan{Name: "pro", Concurrency: 3},
		conns:    make(chan *fakeConn, 16),
		upgrades: make(chan int, 64),
		upgrader: websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}},
	}
	for _, tok := range tokens {
		b.tokens[tok] = true
	}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.close)
	return b
}

func (b *fakeBackend) url() string { return "ws" + strings.TrimPrefix(b.srv.URL, "http") + wire.Path }

func (b *fakeBackend) close() {
	b.srv.CloseClientConnections()
	b.srv.Close()
	b.mu.Lock()
	for _, fc := range b.open {
		_ = fc.ws.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *fakeBackend) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.headers = append(b.headers, r.Header.Clone())
	refuse := b.refuse > 0
	if refuse {
		b.refuse--
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	ok := b.tokens[token]
	plan, mute := b.plan, b.mute
	b.mu.Unlock()
	switch {
	case refuse:
		b.note(http.StatusServiceUnavailable)
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	case !ok:
		b.note(http.StatusUnauthorized)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"error","code":"unauthorized","message":"bad signature"}`))
		return
	}
	ws, err := b.upgrader.Upgrade(w, r, nil)
	if err != nil {
		b.t.Errorf("upgrade: %v", err)
		return
	}
	b.note(http.StatusSwitchingProtocols)
	fc := &fakeConn{ws: ws, frames: make(chan wire.ClientFrame, 64), auths: make(chan wire.Secret, 8),
		pings: make(chan struct{}, 1024), closed: make(chan struct{})}
	ws.SetPingHandler(func(data string) error {
		select {
		case fc.pings <- struct{}{}:
		default:
		}
		fc.wmu.Lock()
		defer fc.wmu.Unlock()
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	fc.send(b.t, wire.ServerFrame{Type: wire.TypeHello, Protocol: wire.Version, Server: "fake",
		Limits: &wire.Limits{MaxFrameBytes: wire.MaxFrameBytes, MaxInFlight: wire.MaxInFlight}, Plan: &plan})
	b.mu.Lock()
	b.open = append(b.open, fc)
	b.wg.Add(1)
	b.mu.Unlock()
	select {
	case b.conns <- fc:
	default:
		b.t.Errorf("too many connections")
	}
	if mute {
		b.wg.Done()
		return
	}
	go func() {
		defer b.wg.Done()
		defer close(fc.closed)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			f, err := wire.DecodeClient(data)
			if err != nil {
				b.t.Errorf("client sent an invalid frame: %v", err)
				return
			}
			switch f.Type {
			case wire.TypeAuth:
				b.mu.Lock()
				ok := b.tokens[string(f.Token)]
				b.mu.Unlock()
				if ok {
					fc.send(b.t, wire.ServerFrame{Type: wire.TypeHello, Protocol: wire.Version, Plan: &plan})
				} else {
					fc.send(b.t, wire.ServerFrame{Type: wire.TypeError, Code: wire.CodeUnauthorized, Message: "bad signature"})
				}
				fc.auths <- f.Token
			case wire.TypePing:
				fc.send(b.t, wire.ServerFrame{Type: wire.TypePong, ID: f.ID})
			default:
				fc.frames <- f
			}
		}
	}()
}

// note records an upgrade attempt; a client in a hot loop must not block the server.
func (b *fakeBackend) note(status int) {
	select {
	case b.upgrades <- status:
	default:
		b.t.Errorf("too many upgrade attempts")
	}
}

func (fc *fakeConn) send(t testing.TB, f wire.ServerFrame) {
	data, err := wire.Marshal(f)
	if err != nil {
		t.Errorf("marshal: %v", err)
		return
	}
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	_ = fc.ws.WriteMessage(websocket.TextMessage, data)
}

// next returns the next request or cancel frame.
func (fc *fakeConn) next(t *testing.T) wire.ClientFrame {
	t.Helper()
	return recv(t, fc.frames, "a client frame")
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// harness is a client running against a fake backend, with its statuses and pauses.
type harness struct {
	b        *fakeBackend
	c        *Client
	statuses chan Status
	pauses   chan time.Duration
}

func start(t *testing.T, b *fakeBackend, token string, tweak func(*Config)) *harness {
	t.Helper()
	h := &harness{b: b, statuses: make(chan Status, 256), pauses: make(chan time.Duration, 256)}
	cfg := Config{
		URL:        b.url(),
		Token:      wire.Secret(token),
		Version:    "test",
		MinBackoff: time.Millisecond,
		MaxBackoff: 8 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h.c = New(cfg, slog.New(slog.DiscardHandler))
	h.c.pauseHook = func(d time.Duration) { h.pauses <- d }
	h.c.Watch(func(s Status) { h.statuses <- s })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := recv(t, done, "Run to return"); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// waitStatus reads statuses until one has state want.
func (h *harness) waitStatus(t *testing.T, want string) Status {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-h.statuses:
			if s.State == want {
				return s
			}
		case <-deadline:
			t.Fatalf("timed out waiting for status %q (now %+v)", want, h.c.Status())
		}
	}
}

// streamResult is what a Stream call returned.
type streamResult struct {
	text string
	done wire.ServerFrame
	err  error
}

// goStream runs Stream in a goroutine the test waits for.
func goStream(t *testing.T, ctx context.Context, c *Client, prefix string) <-chan streamResult {
	t.Helper()
	ch := make(chan streamResult, 1)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	wg.Go(func() {
		var sb strings.Builder
		req := wire.ClientFrame{Op: wire.OpCompletion, Completion: &wire.Completion{Prefix: wire.Text(prefix)}}
		done, err := c.Stream(ctx, req, func(text []byte) { sb.Write(text) })
		ch <- streamResult{sb.String(), done, err}
	})
	return ch
}

func isCode(err error, code wire.Code) bool {
	var e *wire.Error
	return errors.As(err, &e) && e.Code == code
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
