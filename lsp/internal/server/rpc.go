package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"go.lsp.dev/jsonrpc2"
)

// The JSON-RPC 2.0 side of the connection, over stream's framing. It is this package's own,
// not jsonrpc2.Conn: that one decodes each message with a decoder that allocates 32 KB, and
// encodes each reply three times (the result, the envelope, then again as a jsonrpc2.Message)
// while holding the write lock that notifications wait on. Here a message is decoded once, a
// reply is encoded once, outside the lock, and the lock covers one write.

// rpcMsg is any incoming JSON-RPC message: a call (method and id), a notification (method, no
// id) or a response to one of the server's own calls (id, no method).
type rpcMsg struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   *errorObject    `json:"error"`
}

// hasID reports whether the message carries an id (null counts as none, as jsonrpc2 had it:
// a method with a null id is a notification).
func (m *rpcMsg) hasID() bool {
	return len(m.ID) > 0 && !bytes.Equal(m.ID, []byte("null"))
}

// errorObject is a JSON-RPC error object as it comes in.
type errorObject struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// rpcConn is one session's JSON-RPC connection: Run's read loop reads it; replies,
// notifications and the server's calls to the client write to it from any goroutine.
type rpcConn struct {
	st   *stream
	seq  atomic.Int64
	done chan struct{} // closed when the read loop has ended
	err  error         // why the read loop ended; set before done is closed

	mu      sync.Mutex
	pending map[string]chan *rpcMsg // the server's calls waiting for their response, by id key
}

func newRPCConn(st *stream) *rpcConn {
	return &rpcConn{st: st, done: make(chan struct{}), pending: map[string]chan *rpcMsg{}}
}

// run reads messages until the stream ends: calls and notifications go to handle, on this
// goroutine and in order; responses go to the call waiting for them.
func (c *rpcConn) run(handle func(m *rpcMsg)) {
	defer close(c.done)
	for {
		m, err := c.st.Read()
		if err != nil {
			c.err = err
			return
		}
		if m.Method == "" {
			c.mu.Lock()
			ch := c.pending[normalizeID(m.ID)]
			c.mu.Unlock()
			if ch != nil {
				ch <- m // buffered, and the only response with this id
			}
			continue
		}
		handle(m)
	}
}

// Done is closed when the read loop has ended.
func (c *rpcConn) Done() <-chan struct{} { return c.done }

// Err returns why the read loop ended, once Done is closed: io.EOF when the input ended
// between messages.
func (c *rpcConn) Err() error {
	<-c.done
	return c.err
}

// Close closes the stream; the read loop ends.
func (c *rpcConn) Close() error { return c.st.Close() }

// frameStart is the room left before a message's JSON for its Content-Length header.
const frameStart = len("Content-Length: 12345678901\r\n\r\n")

// newFrame returns a buffer for one outgoing message: header room, then the JSON.
func newFrame(n int) []byte {
	return make([]byte, frameStart, frameStart+n)
}

// reply answers the call with id raw (as the client spelled it): result, or err when set.
func (c *rpcConn) reply(id json.RawMessage, result any, err *jsonrpc2.Error) error {
	var body []byte
	if err != nil {
		msg, merr := json.Marshal(err.Message)
		if merr != nil {
			msg = []byte(`"error"`)
		}
		body = newFrame(64 + len(id) + len(msg))
		body = append(body, `{"jsonrpc":"2.0","id":`...)
		body = append(body, id...)
		body = append(body, `,"error":{"code":`...)
		body = strconv.AppendInt(body, int64(err.Code), 10)
		body = append(body, `,"message":`...)
		body = append(body, msg...)
		body = append(body, "}}"...)
	} else {
		res, merr := json.Marshal(result)
		if merr != nil {
			return c.reply(id, nil, jsonrpc2.NewError(jsonrpc2.InternalError, "cannot encode the result"))
		}
		body = newFrame(40 + len(id) + len(res))
		body = append(body, `{"jsonrpc":"2.0","id":`...)
		body = append(body, id...)
		body = append(body, `,"result":`...)
		body = append(body, res...)
		body = append(body, '}')
	}
	return c.st.writeFrame(body)
}

// Notify sends a notification.
func (c *rpcConn) Notify(method string, params any) error {
	body, err := encodeRequest("", method, params)
	if err != nil {
		return err
	}
	return c.st.writeFrame(body)
}

// Call sends a request to the client and waits for its response, ctx's end or the end of
// the connection. An error response comes back as a *jsonrpc2.Error; result, when not nil,
// receives the response's result.
func (c *rpcConn) Call(ctx context.Context, method string, params, result any) error {
	id := strconv.FormatInt(c.seq.Add(1), 10)
	body, err := encodeRequest(id, method, params)
	if err != nil {
		return err
	}
	key := "n:" + id
	ch := make(chan *rpcMsg, 1)
	c.mu.Lock()
	c.pending[key] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, key)
		c.mu.Unlock()
	}()
	if err := c.st.writeFrame(body); err != nil {
		return err
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return &jsonrpc2.Error{Code: jsonrpc2.Code(m.Error.Code), Message: m.Error.Message}
		}
		if result == nil || len(m.Result) == 0 {
			return nil
		}
		if err := json.Unmarshal(m.Result, result); err != nil {
			return fmt.Errorf("%s: decode the result: %w", method, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
}

// encodeRequest encodes a call (id set) or a notification into a new frame.
func encodeRequest(id, method string, params any) ([]byte, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("%s: encode params: %w", method, err)
	}
	m, _ := json.Marshal(method)
	body := newFrame(48 + len(id) + len(m) + len(p))
	body = append(body, `{"jsonrpc":"2.0",`...)
	if id != "" {
		body = append(body, `"id":`...)
		body = append(body, id...)
		body = append(body, ',')
	}
	body = append(body, `"method":`...)
	body = append(body, m...)
	body = append(body, `,"params":`...)
	body = append(body, p...)
	body = append(body, '}')
	return body, nil
}

// decodeMessage decodes a JSON-RPC message; its error is a *jsonrpc2.Error: ParseError for
// what is not JSON, InvalidRequest for JSON that is not a JSON-RPC 2.0 message.
func decodeMessage(body []byte) (*rpcMsg, error) {
	m := new(rpcMsg)
	if err := json.Unmarshal(body, m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || !json.Valid(body) {
			return nil, jsonrpc2.NewError(jsonrpc2.ParseError, "parse error: the message is not valid JSON")
		}
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, "invalid request: "+jsonProblem(err))
	}
	if m.Version != jsonrpc2.Version {
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, `invalid request: not a JSON-RPC 2.0 message (jsonrpc must be "2.0")`)
	}
	if m.hasID() && !validID(m.ID) {
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, "invalid request: the id must be a string or an integer")
	}
	if m.Method == "" && !m.hasID() {
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, "invalid request: a message needs a method or an id")
	}
	return m, nil
}

// errorResponse encodes an error response to the message body, with the message's id when it
// has a usable one, else null.
func errorResponse(body []byte, e *jsonrpc2.Error) []byte {
	id := json.RawMessage("null")
	var head struct {
		ID json.RawMessage `json:"id"`
	}
	if body != nil && json.Unmarshal(body, &head) == nil && validID(head.ID) {
		id = head.ID
	}
	out, _ := json.Marshal(struct {
		Version string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *jsonrpc2.Error `json:"error"`
	}{jsonrpc2.Version, id, e})
	return out
}
