package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"sync"

	"go.lsp.dev/jsonrpc2"
)

// maxMessageBytes bounds one incoming message. A document of a few MB, JSON-escaped, fits.
const maxMessageBytes = 64 << 20

// stream is a jsonrpc2.Stream speaking LSP's base protocol (Content-Length framing). Unlike
// jsonrpc2.NewStream it survives a message that is not JSON-RPC: it answers ParseError (or
// InvalidRequest) with a null id and reads on, where jsonrpc2's Conn would close the
// connection. Broken framing (a bad header) still ends the stream: nothing after it can be
// trusted.
type stream struct {
	in     *bufio.Reader
	out    io.Writer
	closer io.Closer
	wmu    sync.Mutex
	buf    bytes.Buffer // guarded by wmu
	// trace, when set, sees every message read ("recv") or written ("send").
	trace func(dir string, body []byte)
}

func newStream(rwc io.ReadWriteCloser, trace func(dir string, body []byte)) *stream {
	return &stream{in: bufio.NewReaderSize(rwc, 64<<10), out: rwc, closer: rwc, trace: trace}
}

// Read implements jsonrpc2.Stream.
func (s *stream) Read(context.Context) (jsonrpc2.Message, int64, error) {
	for {
		body, n, err := s.readFrame()
		if err != nil {
			return nil, n, err
		}
		if s.trace != nil {
			s.trace("recv", body)
		}
		msg, err := decodeMessage(body)
		if err == nil {
			return msg, n, nil
		}
		var rpcErr *jsonrpc2.Error
		if !errors.As(err, &rpcErr) {
			rpcErr = jsonrpc2.NewError(jsonrpc2.InternalError, err.Error())
		}
		if err := s.writeRaw(errorResponse(body, rpcErr)); err != nil {
			return nil, n, err
		}
	}
}

// readFrame reads one message's headers and body.
func (s *stream) readFrame() ([]byte, int64, error) {
	var total int64
	length, headers := -1, 0
	for {
		line, err := s.in.ReadString('\n')
		total += int64(len(line))
		if err != nil {
			if err == io.EOF && total == 0 {
				return nil, total, io.EOF
			}
			return nil, total, fmt.Errorf("read header: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if headers == 0 {
				continue // tolerate blank lines between messages
			}
			if length < 0 {
				return nil, total, errors.New("message without Content-Length")
			}
			break
		}
		headers++
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, total, fmt.Errorf("malformed header line (%d bytes)", len(line))
		}
		if textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name)) == "Content-Length" {
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil || n < 0 {
				return nil, total, fmt.Errorf("bad Content-Length %q", clip(value))
			}
			length = n
		}
	}
	if length > maxMessageBytes {
		// Skip it and say so; the framing stays intact.
		m, err := io.CopyN(io.Discard, s.in, int64(length))
		total += m
		if err != nil {
			return nil, total, fmt.Errorf("read body: %w", err)
		}
		msg := fmt.Sprintf("message of %d bytes is over the limit of %d", length, maxMessageBytes)
		if err := s.writeRaw(errorResponse(nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, msg))); err != nil {
			return nil, total, err
		}
		return s.readFrame()
	}
	body := make([]byte, length)
	m, err := io.ReadFull(s.in, body)
	total += int64(m)
	if err != nil {
		return nil, total, fmt.Errorf("read body: %w", err)
	}
	return body, total, nil
}

// decodeMessage decodes a JSON-RPC message; its error is a *jsonrpc2.Error: ParseError for
// what is not JSON, InvalidRequest for JSON that is not a JSON-RPC message.
func decodeMessage(body []byte) (msg jsonrpc2.Message, err error) {
	if !json.Valid(body) {
		return nil, jsonrpc2.NewError(jsonrpc2.ParseError, "parse error: the message is not valid JSON")
	}
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, "invalid request: not a JSON-RPC 2.0 message")
		}
	}()
	var head struct {
		Version string `json:"jsonrpc"`
	}
	if json.Unmarshal(body, &head) != nil || head.Version != jsonrpc2.Version {
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, `invalid request: not a JSON-RPC 2.0 message (jsonrpc must be "2.0")`)
	}
	msg, err = jsonrpc2.DecodeMessage(body)
	if err != nil {
		return nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, "invalid request: "+jsonProblem(err))
	}
	return msg, nil
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

// validID reports whether raw is a JSON string or integer, as a request id must be.
func validID(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return false
	}
	if raw[0] == '"' {
		var s string
		return json.Unmarshal(raw, &s) == nil
	}
	_, err := strconv.ParseInt(string(raw), 10, 64)
	return err == nil
}

// Write implements jsonrpc2.Stream. The context is ignored: a message is written whole or the
// stream is broken, whatever happened to the request it answers.
func (s *stream) Write(_ context.Context, msg jsonrpc2.Message) (int64, error) {
	body, err := json.Marshal(msg)
	if err != nil {
		return 0, fmt.Errorf("encode message: %w", err)
	}
	if s.trace != nil {
		s.trace("send", body)
	}
	return int64(len(body)), s.writeBody(body)
}

func (s *stream) writeRaw(body []byte) error {
	if s.trace != nil {
		s.trace("send", body)
	}
	return s.writeBody(body)
}

func (s *stream) writeBody(body []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.buf.Reset()
	fmt.Fprintf(&s.buf, "Content-Length: %d\r\n\r\n", len(body))
	s.buf.Write(body)
	_, err := s.out.Write(s.buf.Bytes())
	if s.buf.Cap() > 1<<20 {
		s.buf = bytes.Buffer{} // do not keep a large document's worth of memory
	}
	if err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	return nil
}

// Close implements jsonrpc2.Stream.
func (s *stream) Close() error { return s.closer.Close() }

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "the value"
		}
		return fmt.Sprintf("%s must be %s, not %s", field, jsonType(te.Type.String()), te.Value)
	}
	msg := err.Error()
	if strings.Contains(msg, "id") {
		return "the id must be a string or an integer"
	}
	return "not a JSON-RPC 2.0 message"
}

// jsonType names a Go type the way a JSON user would.
func jsonType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "a number"
	case goType == "string" || strings.HasSuffix(goType, "URI"):
		return "a string"
	case goType == "bool":
		return "true or false"
	}
	return "an object"
}

// clip shortens a client-chosen string before it goes into an error or a log.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
