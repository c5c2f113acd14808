package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is an in-process language server on pipes: it keeps the documents it was sent,
// answers completion with one item, asks the client for configuration on initialize, never
// answers "test/hang", and records what it received.
type fakeServer struct {
	in  *bufio.Reader
	out io.Writer

	mu       sync.Mutex
	docs     map[string]string
	received []string          // methods, in order
	replies  map[string][]byte // replies to the server's own requests, by id
	replied  chan string       // ids of those replies, as they come
	cancels  []json.RawMessage
}

func startFake(t *testing.T, opts ClientOptions) (*Client, *fakeServer) {
	t.Helper()
	cr, sw := io.Pipe() // server -> client
	sr, cw := io.Pipe() // client -> server
	s := &fakeServer{in: bufio.NewReader(sr), out: sw, docs: map[string]string{}, replies: map[string][]byte{}, replied: make(chan string, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
		sw.Close()
	}()
	c := NewClient(cr, cw, opts)
	t.Cleanup(func() {
		cw.Close()
		<-done
		<-c.Done()
	})
	return c, s
}

func (s *fakeServer) write(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(s.out, "Content-Length: %d\r\n\r\n%s", len(b), b)
}

func (s *fakeServer) serve() {
	tp := textproto.NewReader(s.in)
	for {
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		n, _ := strconv.Atoi(h.Get("Content-Length"))
		body := make([]byte, n)
		if _, err := io.ReadFull(s.in, body); err != nil {
			return
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return
		}
		s.mu.Lock()
		if m.Method == "" {
			s.replies[string(m.ID)] = m.Result
			s.mu.Unlock()
			s.replied <- string(m.ID)
			continue
		}
		s.received = append(s.received, m.Method)
		s.mu.Unlock()
		switch m.Method {
		case "initialize":
			s.write(map[string]any{"jsonrpc": "2.0", "id": "srv-1", "method": "workspace/configuration",
				"params": map[string]any{"items": []any{map[string]any{"section": "x"}}}})
			s.write(map[string]any{"jsonrpc": "2.0", "method": "window/logMessage", "params": map[string]any{"message": "hi"}})
			s.write(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": map[string]any{"capabilities": map[string]any{}}})
		case "textDocument/didOpen":
			var p struct {
				TextDocument struct{ URI, Text string }
			}
			_ = json.Unmarshal(m.Params, &p)
			s.mu.Lock()
			s.docs[p.TextDocument.URI] = p.TextDocument.Text
			s.mu.Unlock()
		case "textDocument/didChange":
			s.applyChange(m.Params)
		case MethodCompletion:
			s.write(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": map[string]any{
				"isIncomplete": true, "items": []any{map[string]any{"label": "x"}}}})
		case "test/error":
			s.write(map[string]any{"jsonrpc": "2.0", "id": m.ID, "error": map[string]any{"code": -32601, "message": "no"}})
		case "$/cancelRequest":
			s.mu.Lock()
			s.cancels = append(s.cancels, m.Params)
			s.mu.Unlock()
		case "test/hang", "initialized":
		}
	}
}

// applyChange applies incremental changes whose ranges lie within one line (all Doc sends).
func (s *fakeServer) applyChange(raw json.RawMessage) {
	var p struct {
		TextDocument   struct{ URI string }
		ContentChanges []struct {
			Range struct{ Start, End Position }
			Text  string
		}
	}
	_ = json.Unmarshal(raw, &p)
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := strings.Split(s.docs[p.TextDocument.URI], "\n")
	for _, c := range p.ContentChanges {
		l := lines[c.Range.Start.Line]
		lines[c.Range.Start.Line] = l[:c.Range.Start.Character] + c.Text + l[c.Range.End.Character:]
	}
	s.docs[p.TextDocument.URI] = strings.Join(lines, "\n")
}

func (s *fakeServer) doc(uri string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.docs[uri]
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClientCall(t *testing.T) {
	var gotReq, gotNote []string
	var mu sync.Mutex
	c, s := startFake(t, ClientOptions{
		OnRequest: func(method string, _ json.RawMessage) (any, error) {
			mu.Lock()
			gotReq = append(gotReq, method)
			mu.Unlock()
			return []any{map[string]any{"k": 1}}, nil
		},
		OnNotify: func(method string, _ json.RawMessage) {
			mu.Lock()
			gotNote = append(gotNote, method)
			mu.Unlock()
		},
	})
	ctx := testCtx(t)
	res, err := c.Call(ctx, "initialize", InitParams("file:///w", true, nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Latency <= 0 || res.Bytes == 0 || !strings.Contains(string(res.Raw), "capabilities") {
		t.Errorf("initialize result %+v: want a positive latency and the capabilities", res)
	}
	select {
	case id := <-s.replied:
		if id != `"srv-1"` {
			t.Errorf("reply to %s, want to \"srv-1\"", id)
		}
	case <-ctx.Done():
		t.Fatal("the client never answered the server's request")
	}
	mu.Lock()
	if want := "workspace/configuration"; len(gotReq) != 1 || gotReq[0] != want {
		t.Errorf("server requests seen: %v, want [%s]", gotReq, want)
	}
	if want := "window/logMessage"; len(gotNote) != 1 || gotNote[0] != want {
		t.Errorf("notifications seen: %v, want [%s]", gotNote, want)
	}
	mu.Unlock()

	_, err = c.Call(ctx, "test/error", nil)
	var rpcErr *RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32601 {
		t.Errorf("test/error: err = %v, want RPCError -32601", err)
	}
	s.mu.Lock()
	reply := string(s.replies[`"srv-1"`])
	s.mu.Unlock()
	if want := `[{"k":1}]`; reply != want {
		t.Errorf("reply to the server's request = %s, want %s", reply, want)
	}
}

func TestClientCallCancel(t *testing.T) {
	c, s := startFake(t, ClientOptions{})
	ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, "test/hang", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	// A later call's answer proves the cancel notification was read before it.
	if _, err := c.Call(testCtx(t), MethodCompletion, nil); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cancels) != 1 || string(s.cancels[0]) != `{"id":1}` {
		t.Errorf("cancels = %s, want one for id 1", s.cancels)
	}
}

func TestClientClosed(t *testing.T) {
	r, w := io.Pipe()
	c := NewClient(r, io.Discard, ClientOptions{})
	go w.Close()
	_, err := c.Call(testCtx(t), "x", nil)
	if !errors.Is(err, ErrClosed) {
		t.Errorf("err = %v, want ErrClosed", err)
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err() = %v after a clean end, want nil", err)
	}
}

func TestClientBadFrame(t *testing.T) {
	tests := []struct{ name, input string }{
		{"no length", "X: 1\r\n\r\n{}"},
		{"not json", "Content-Length: 3\r\n\r\nabc"},
		{"short body", "Content-Length: 10\r\n\r\n{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(strings.NewReader(tt.input), io.Discard, ClientOptions{})
			if err := c.Err(); err == nil {
				t.Error("Err() = nil, want an error")
			}
		})
	}
}
