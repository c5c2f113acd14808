package server

import (
	"go.lsp.dev/protocol"

	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/textproto"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/codingplan/codingplan/lsp/internal/complete"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
	"github.com/codingplan/codingplan/lsp/internal/remote"
	wire "github.com/codingplan/codingplan/shared"
)

// deadline bounds every wait in these tests; nothing sleeps.
const deadline = 10 * time.Second

// fakeEngine is a Completer with function fields.
type fakeEngine struct {
	complete func(ctx context.Context, in complete.Input) (complete.Result, error)

	mu                       sync.Mutex
	shown, accepted, partial int
	forgotten                []string
}

func (f *fakeEngine) Complete(ctx context.Context, in complete.Input) (complete.Result, error) {
	if f.complete == nil {
		return complete.Result{}, nil
	}
	return f.complete(ctx, in)
}

func (f *fakeEngine) Forget(doc string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = append(f.forgotten, doc)
}
func (f *fakeEngine) Shown(string)             { f.mu.Lock(); f.shown++; f.mu.Unlock() }
func (f *fakeEngine) Accepted(string)          { f.mu.Lock(); f.accepted++; f.mu.Unlock() }
func (f *fakeEngine) PartiallyAccepted(string) { f.mu.Lock(); f.partial++; f.mu.Unlock() }

func (f *fakeEngine) counts() (int, int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shown, f.accepted, f.partial
}

// fakeBackend is a Backend with function fields; it records tokens and URLs set.
type fakeBackend struct {
	stream func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error)

	mu         sync.Mutex
	tokens     []wire.Secret
	transports []remote.Transport
	urls       []string
	retries    int
	status     remote.Status
	watch      func(remote.Status)

	refusedFn func(wire.Secret, wire.Code)
}

func (f *fakeBackend) Stream(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
	if f.stream == nil {
		return wire.ServerFrame{}, remote.ErrDisconnected
	}
	return f.stream(ctx, req, onDelta)
}

func (f *fakeBackend) SetToken(t wire.Secret) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = append(f.tokens, t)
}

func (f *fakeBackend) SetURL(u string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.urls = append(f.urls, u)
}

// OnRefused keeps f; refuse calls it, as remote's connection would.
func (f *fakeBackend) OnRefused(fn func(wire.Secret, wire.Code)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refusedFn = fn
}

// refuse reports that the backend refused token, if anyone listens.
func (f *fakeBackend) refuse(token wire.Secret, code wire.Code) {
	f.mu.Lock()
	fn := f.refusedFn
	f.mu.Unlock()
	if fn != nil {
		fn(token, code)
	}
}

func (f *fakeBackend) SetTransport(t remote.Transport) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.transports = append(f.transports, t)
}

func (f *fakeBackend) Retry() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retries++
}

// Watch keeps f; push calls it, as remote's notifier would.
func (f *fakeBackend) Watch(fn func(remote.Status)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watch = fn
	return func() {
		f.mu.Lock()
		f.watch = nil
		f.mu.Unlock()
	}
}

// push reports st to the watcher, if there is one.
func (f *fakeBackend) push(st remote.Status) {
	f.mu.Lock()
	fn := f.watch
	f.mu.Unlock()
	if fn != nil {
		fn(st)
	}
}

func (f *fakeBackend) Status() remote.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status.State == "" {
		return remote.Status{State: lspx.StateReady, Message: "ready"}
	}
	return f.status
}

func (f *fakeBackend) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (f *fakeBackend) last() (wire.Secret, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var t wire.Secret
	var u string
	if len(f.tokens) > 0 {
		t = f.tokens[len(f.tokens)-1]
	}
	if len(f.urls) > 0 {
		u = f.urls[len(f.urls)-1]
	}
	return t, u
}

// message is any JSON-RPC message.
type message struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// client drives a Server over pipes as an editor does.
type client struct {
	t       *testing.T
	w       io.WriteCloser
	wmu     sync.Mutex
	mu      sync.Mutex
	waiters map[string]chan message
	early   map[string]message // responses that came before anyone waited
	notes   chan message       // notifications from the server, in order
	// onRequest answers the server's requests; set before initialize.
	onRequest func(m message) (any, error)
	requests  chan message // every server request, after it was answered
	done      chan error   // Run's result
	closed    chan struct{}
}

// newClient starts a server with cfg and connects a client to it.
func newClient(t *testing.T, cfg Config, log *slog.Logger) *client {
	t.Helper()
	return newClientFor(t, New(cfg, log))
}

// newClientFor runs s and connects a client to it.
func newClientFor(t *testing.T, s *Server) *client {
	t.Helper()
	sr, cw := io.Pipe()
	cr, sw := io.Pipe()
	c := &client{t: t, w: cw, waiters: map[string]chan message{}, early: map[string]message{},
		notes: make(chan message, 256), requests: make(chan message, 256), done: make(chan error, 1), closed: make(chan struct{})}
	c.onRequest = func(message) (any, error) { return nil, nil }
	rwc := struct {
		io.Reader
		io.Writer
		io.Closer
	}{sr, sw, closerFunc(func() error { sr.Close(); return sw.Close() })}
	go func() { c.done <- s.Run(context.Background(), rwc) }()
	go c.read(cr)
	t.Cleanup(func() {
		cw.Close()
		select {
		case <-c.done:
		case <-time.After(deadline):
			t.Error("server did not stop")
		}
	})
	return c
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func (c *client) read(r io.Reader) {
	defer close(c.closed)
	br := bufio.NewReader(r)
	tp := textproto.NewReader(br)
	for {
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		n, err := strconv.Atoi(h.Get("Content-Length"))
		if err != nil {
			c.t.Errorf("frame without Content-Length: %v", h)
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		var m message
		if err := json.Unmarshal(body, &m); err != nil {
			c.t.Errorf("server sent invalid JSON %q: %v", body, err)
			return
		}
		switch {
		case m.Method != "" && m.ID != nil:
			go c.answer(m)
		case m.Method != "":
			c.notes <- m
		default:
			key := string(m.ID)
			c.mu.Lock()
			ch := c.waiters[key]
			delete(c.waiters, key)
			if ch == nil {
				c.early[key] = m
			}
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
}

func (c *client) answer(m message) {
	result, err := c.onRequest(m)
	reply := map[string]any{"jsonrpc": "2.0", "id": m.ID}
	if err != nil {
		reply["error"] = map[string]any{"code": -32603, "message": err.Error()}
	} else {
		reply["result"] = result
	}
	c.send(reply)
	c.requests <- m
}

func (c *client) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatalf("marshal: %v", err)
	}
	c.sendRaw(b)
}

func (c *client) sendRaw(body []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	fmt.Fprintf(c.w, "Content-Length: %d\r\n\r\n%s", len(body), body)
}

// start sends a request with the given id (a number or a string) and returns a channel for
// its response.
func (c *client) start(id any, method string, params any) <-chan message {
	raw, _ := json.Marshal(id)
	ch := make(chan message, 1)
	c.mu.Lock()
	if m, ok := c.early[string(raw)]; ok {
		delete(c.early, string(raw))
		ch <- m
	} else {
		c.waiters[string(raw)] = ch
	}
	c.mu.Unlock()
	c.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	return ch
}

var nextID struct {
	sync.Mutex
	n int
}

func newID() int {
	nextID.Lock()
	defer nextID.Unlock()
	nextID.n++
	return nextID.n
}

// call sends a request and waits for its response.
func (c *client) call(method string, params any) message {
	c.t.Helper()
	return c.wait(c.start(newID(), method, params))
}

func (c *client) wait(ch <-chan message) message {
	c.t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(deadline):
		c.t.Fatalf("no response within %v", deadline)
	}
	return message{}
}

// result calls method and decodes its result, failing on an error response.
func (c *client) result(method string, params, out any) {
	c.t.Helper()
	m := c.call(method, params)
	if m.Error != nil {
		c.t.Fatalf("%s: error %d %s", method, m.Error.Code, m.Error.Message)
	}
	if out != nil {
		// Test shapes decode with encoding/json; protocol's types (unions) with protocol's codec.
		if err := json.Unmarshal(m.Result, out); err != nil && protocol.Unmarshal(m.Result, out) != nil {
			c.t.Fatalf("%s: decode result %s: %v", method, m.Result, err)
		}
	}
}

func (c *client) notify(method string, params any) {
	c.send(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

// note waits for the next notification of method, skipping others.
func (c *client) note(method string) message {
	c.t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case m := <-c.notes:
			if m.Method == method {
				return m
			}
		case <-timeout:
			c.t.Fatalf("no %s notification within %v", method, deadline)
		}
	}
}

// serverRequest waits for the next request from the server of method (already answered).
func (c *client) serverRequest(method string) message {
	c.t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case m := <-c.requests:
			if m.Method == method {
				return m
			}
		case <-timeout:
			c.t.Fatalf("no %s request from the server within %v", method, deadline)
		}
	}
}

// initialize runs initialize and initialized with the given capabilities and options.
func (c *client) initialize(caps, opts any) map[string]any {
	c.t.Helper()
	params := map[string]any{"processId": nil, "clientInfo": map[string]any{"name": "test-client"},
		"rootUri": "file:///work", "capabilities": caps}
	if opts != nil {
		params["initializationOptions"] = opts
	}
	var res map[string]any
	c.result("initialize", params, &res)
	c.notify("initialized", map[string]any{})
	return res
}

func (c *client) open(uri, lang, text string) {
	c.notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": uri, "languageId": lang, "version": 1, "text": text}})
}

// exit sends shutdown and exit and returns Run's result.
func (c *client) exit(shutdown bool) error {
	c.t.Helper()
	if shutdown {
		c.result("shutdown", nil, nil)
	}
	c.notify("exit", nil)
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(deadline):
		c.t.Fatal("Run did not return after exit")
	}
	return nil
}

func wantError(t *testing.T, m message, code int, substr string) {
	t.Helper()
	if m.Error == nil {
		t.Fatalf("result %s, want error %d", m.Result, code)
	}
	if m.Error.Code != code || !bytes.Contains([]byte(m.Error.Message), []byte(substr)) {
		t.Errorf("error %d %q, want %d containing %q", m.Error.Code, m.Error.Message, code, substr)
	}
}

func pos(line, char int) map[string]any { return map[string]any{"line": line, "character": char} }

func rangeOf(sl, sc, el, ec int) map[string]any {
	return map[string]any{"start": pos(sl, sc), "end": pos(el, ec)}
}

// inlineCaps is a client that does inline completion, code action resolve, progress,
// configuration and versioned edits.
var inlineCaps = map[string]any{
	"general":   map[string]any{"positionEncodings": []string{"utf-16"}},
	"workspace": map[string]any{"configuration": true, "applyEdit": true, "workspaceEdit": map[string]any{"documentChanges": true}},
	"textDocument": map[string]any{
		"inlineCompletion": map[string]any{},
		"codeAction":       map[string]any{"resolveSupport": map[string]any{"properties": []string{"edit"}}},
	},
	"window": map[string]any{"workDoneProgress": true},
}

func statusOf(state string) remote.Status {
	return remote.Status{State: state, Message: state, RetryAfterMS: 1500, Plan: &remote.Plan{Name: "pro", Concurrency: 3, InUse: 1}}
}
