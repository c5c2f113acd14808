package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lspClient speaks LSP over a process's stdio the way an editor does: Content-Length framed
// JSON-RPC, requests with numeric ids it chooses itself (so a test can cancel them by id), and
// answers to the server's own requests.
type lspClient struct {
	t   *testing.T
	w   io.Writer
	wmu sync.Mutex

	mu      sync.Mutex
	nextID  int
	pending map[int]chan rpcMessage

	notes chan rpcMessage // server notifications, in order
	// onRequest answers a request from the server; nil result and nil error reply null.
	onRequest func(method string, params json.RawMessage) (any, error)
	done      chan struct{} // closed when the server's stdout ends
}

type rpcMessage struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("jsonrpc error %d: %s", e.Code, e.Message) }

func newLSPClient(t *testing.T, r io.Reader, w io.Writer) *lspClient {
	c := &lspClient{t: t, w: w, pending: map[int]chan rpcMessage{}, notes: make(chan rpcMessage, 1024),
		done: make(chan struct{})}
	c.onRequest = func(string, json.RawMessage) (any, error) { return nil, nil }
	go c.read(bufio.NewReader(r))
	return c
}

func (c *lspClient) read(r *bufio.Reader) {
	defer close(c.done)
	tp := textproto.NewReader(r)
	for {
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		n, err := strconv.Atoi(h.Get("Content-Length"))
		if err != nil {
			c.t.Errorf("server sent a frame without Content-Length: %v", h)
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		var m rpcMessage
		if err := json.Unmarshal(body, &m); err != nil {
			c.t.Errorf("server sent invalid JSON: %v", err)
			return
		}
		switch {
		case m.Method != "" && m.ID != nil:
			go c.answer(m)
		case m.Method != "":
			select {
			case c.notes <- m:
			default:
				c.t.Errorf("notification queue full, dropped %s", m.Method)
			}
		default:
			id, _ := strconv.Atoi(string(m.ID))
			c.mu.Lock()
			ch := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
}

func (c *lspClient) answer(m rpcMessage) {
	result, err := c.onRequest(m.Method, m.Params)
	reply := map[string]any{"jsonrpc": "2.0", "id": m.ID}
	if err != nil {
		reply["error"] = map[string]any{"code": -32603, "message": err.Error()}
	} else {
		reply["result"] = result
	}
	c.send(reply)
}

func (c *lspClient) send(msg any) {
	body, err := json.Marshal(msg)
	if err != nil {
		c.t.Errorf("marshal: %v", err)
		return
	}
	c.sendRaw(body)
}

func (c *lspClient) sendRaw(body []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := fmt.Fprintf(c.w, "Content-Length: %d\r\n\r\n%s", len(body), body); err != nil {
		c.t.Logf("write to server: %v", err)
	}
}

// start sends a request and returns its id and a channel for the response.
func (c *lspClient) start(method string, params any) (int, <-chan rpcMessage) {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan rpcMessage, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	c.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	return id, ch
}

// call sends a request and waits for its response, decoding the result into out.
func (c *lspClient) call(ctx context.Context, method string, params, out any) error {
	_, ch := c.start(method, params)
	return c.wait(ctx, ch, out)
}

func (c *lspClient) wait(ctx context.Context, ch <-chan rpcMessage, out any) error {
	select {
	case m := <-ch:
		if m.Error != nil {
			return m.Error
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-c.done:
		return fmt.Errorf("server closed its output")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *lspClient) notify(method string, params any) {
	c.send(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

// waitNote waits for a notification of method for which match (may be nil) returns true.
func (c *lspClient) waitNote(ctx context.Context, method string, match func(json.RawMessage) bool) (json.RawMessage, error) {
	for {
		select {
		case m := <-c.notes:
			if m.Method == method && (match == nil || match(m.Params)) {
				return m.Params, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w", method, ctx.Err())
		}
	}
}

// position is an LSP position.
type position struct {
	Line      int `json:"line"`
	Character int `json:"character"`
}

type lspRange struct {
	Start position `json:"start"`
	End   position `json:"end"`
}

// endOf returns the position after the last character of text, counting UTF-16 code units.
func endOf(text string) position {
	lines := strings.Split(text, "\n")
	last := lines[len(lines)-1]
	n := 0
	for _, r := range last {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return position{Line: len(lines) - 1, Character: n}
}
