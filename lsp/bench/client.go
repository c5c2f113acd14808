// Package bench measures language servers the way an editor meets them: real processes over real
// stdio, Content-Length framed JSON-RPC, and the wall time from writing a request to reading its
// response. It drives codingplan-lsp (through the real backend and an instant test provider) and,
// side by side in the same run, a peer (tabby-agent against an instant fake Tabby server), and it
// reads a server's resident memory from /proc.
//
// cmd/lspbench is the program; scripts/bench-lsp.sh installs the peer and runs it.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/textproto"
	"strconv"
	"sync"
	"time"
)

// ErrClosed is returned for a call whose server closed its output before answering.
var ErrClosed = errors.New("server closed its output")

// Client is a minimal LSP client: it frames requests and notifications, matches responses to
// requests by id, timestamps each response as soon as its body is read, answers the server's own
// requests through OnRequest, and hands notifications to OnNotify.
//
// Its reader goroutine ends when the server's output ends; Done is closed then.
type Client struct {
	w   io.Writer
	wmu sync.Mutex

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan response
	notes   map[string]int // notifications received, by method

	onRequest func(method string, params json.RawMessage) (any, error)
	onNotify  func(method string, params json.RawMessage)

	answers sync.WaitGroup // replies to the server's requests, written off the reader
	done    chan struct{}
	err     error // why the reader stopped; read after done is closed
}

type response struct {
	msg  message
	at   time.Time // when the body had been read
	size int
}

type message struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *RPCError       `json:"error,omitempty"`
}

// RPCError is a JSON-RPC error response.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("jsonrpc error %d: %s", e.Code, e.Message) }

// ClientOptions are the callbacks of a Client. OnNotify runs on the reader goroutine, so it must be
// quick; OnRequest runs on a goroutine of its own per request. nil OnRequest answers null, nil
// OnNotify drops notifications.
type ClientOptions struct {
	OnRequest func(method string, params json.RawMessage) (any, error)
	OnNotify  func(method string, params json.RawMessage)
}

// NewClient starts a client reading the server's output r and writing to its input w.
func NewClient(r io.Reader, w io.Writer, opts ClientOptions) *Client {
	c := &Client{
		w:         w,
		pending:   map[int64]chan response{},
		notes:     map[string]int{},
		onRequest: opts.OnRequest,
		onNotify:  opts.OnNotify,
		done:      make(chan struct{}),
	}
	go c.read(bufio.NewReaderSize(r, 64<<10))
	return c
}

// Done is closed when the server's output has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the reader stopped (nil for a clean end of output); valid once Done is closed.
func (c *Client) Err() error {
	<-c.done
	return c.err
}

func (c *Client) read(r *bufio.Reader) {
	defer func() {
		c.answers.Wait()
		close(c.done)
	}()
	tp := textproto.NewReader(r)
	for {
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.err = fmt.Errorf("reading a frame header: %w", err)
			}
			return
		}
		n, err := strconv.Atoi(h.Get("Content-Length"))
		if err != nil || n < 0 {
			c.err = fmt.Errorf("frame without a valid Content-Length: %q", h.Get("Content-Length"))
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			c.err = fmt.Errorf("reading a frame body: %w", err)
			return
		}
		at := time.Now()
		var m message
		if err := json.Unmarshal(body, &m); err != nil {
			c.err = fmt.Errorf("frame is not JSON: %w", err)
			return
		}
		switch {
		case m.Method != "" && m.ID != nil:
			// Not on the reader: the server may be blocked writing to us until we read on.
			c.answers.Go(func() { c.answer(m) })
		case m.Method != "":
			c.mu.Lock()
			c.notes[m.Method]++
			c.mu.Unlock()
			if c.onNotify != nil {
				c.onNotify(m.Method, m.Params)
			}
		default:
			id, err := strconv.ParseInt(string(m.ID), 10, 64)
			if err != nil {
				continue // not one of ours: we only send numeric ids
			}
			c.mu.Lock()
			ch := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if ch != nil {
				ch <- response{msg: m, at: at, size: n}
			}
		}
	}
}

func (c *Client) answer(m message) {
	var result any
	var err error
	if c.onRequest != nil {
		result, err = c.onRequest(m.Method, m.Params)
	}
	reply := map[string]any{"jsonrpc": "2.0", "id": m.ID}
	if err != nil {
		reply["error"] = RPCError{Code: -32603, Message: err.Error()}
	} else {
		reply["result"] = result
	}
	_, _ = c.send(reply) // a failed write shows as the server going away
}

// send writes one frame and returns the time just before the write started.
func (c *Client) send(msg any) (time.Time, error) {
	body, err := json.Marshal(msg)
	if err != nil {
		return time.Time{}, fmt.Errorf("encoding a message: %w", err)
	}
	frame := make([]byte, 0, len(body)+32)
	frame = append(frame, "Content-Length: "...)
	frame = strconv.AppendInt(frame, int64(len(body)), 10)
	frame = append(frame, "\r\n\r\n"...)
	frame = append(frame, body...)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	start := time.Now()
	if _, err := c.w.Write(frame); err != nil {
		return start, fmt.Errorf("writing to the server: %w", err)
	}
	return start, nil
}

// Notifications returns how many notifications of each method the server has sent so far.
func (c *Client) Notifications() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.notes)
}

// Notify sends a notification.
func (c *Client) Notify(method string, params any) error {
	_, err := c.send(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
	return err
}

// Result is a response to a timed call.
type Result struct {
	Raw     json.RawMessage // the result; nil for an error response
	Latency time.Duration   // from just before the request was written to just after the response was read
	Bytes   int             // size of the response body
}

// Call sends a request and waits for its response or ctx. It returns the result with the latency
// measured around the wire; a JSON-RPC error response is returned as *RPCError.
func (c *Client) Call(ctx context.Context, method string, params any) (Result, error) {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan response, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}
	start, err := c.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		forget()
		return Result{}, err
	}
	select {
	case r := <-ch:
		res := Result{Latency: r.at.Sub(start), Bytes: r.size}
		if r.msg.Error != nil {
			return res, r.msg.Error
		}
		res.Raw = r.msg.Result
		return res, nil
	case <-c.done:
		forget()
		return Result{}, fmt.Errorf("%s: %w", method, ErrClosed)
	case <-ctx.Done():
		forget()
		_ = c.Notify("$/cancelRequest", map[string]any{"id": id})
		return Result{}, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}
