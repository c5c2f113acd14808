package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	wire "github.com/codingplan/codingplan/shared"
	"io"
	"strconv"
	"strings"
	"sync"

	"go.lsp.dev/jsonrpc2"
	"go.lsp.dev/protocol"
)

// MaxMessageBytes bounds one incoming message. A document of a few MB, JSON-escaped, fits.
const MaxMessageBytes = 64 << 20

// maxHeaderLine bounds one header line; the base protocol's are a few dozen bytes.
const maxHeaderLine = 4 << 10

// ErrFraming wraps the error that ends a stream whose base protocol framing is broken.
var ErrFraming = errors.New("broken message framing")

// Trace sees every message read ("recv") or written ("send"), as its JSON body.
type Trace func(dir string, body []byte)

// Stream is LSP's base protocol over a byte stream, as a jsonrpc2.Stream.
type Stream struct {
	in     *bufio.Reader
	out    io.Writer
	closer io.Closer
	trace  Trace
	wmu    sync.Mutex // held while a message is written
}

var _ jsonrpc2.Stream = (*Stream)(nil)

// NewStream returns a Stream over rwc; trace may be nil.
func NewStream(rwc io.ReadWriteCloser, trace Trace) *Stream {
	return &Stream{in: bufio.NewReaderSize(wipeReader{rwc}, 64<<10), out: rwc, closer: rwc, trace: trace}
}

// Read returns the next JSON-RPC message. A message that is not one is answered with an error
// response here and skipped. The message borrows its body, which is not reused.
func (s *Stream) Read(ctx context.Context) (jsonrpc2.Message, int64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		body, n, err := s.readFrame()
		if errors.Is(err, ErrFraming) {
			s.tellFraming(err)
		}
		if err != nil {
			return nil, 0, err
		}
		if s.trace != nil {
			s.trace("recv", body)
		}
		// jsonrpc2's scanner skips members it does not use without checking them (a raw control
		// character in a name passes); a message that is not JSON is a ParseError here, as the
		// spec has it, whatever part of it is broken.
		msg, err := jsonrpc2.DecodeMessage(body)
		if err == nil && json.Valid(body) {
			return msg, n, nil
		}
		if err == nil {
			err = jsonrpc2.ErrParse
		}
		err = s.writeBody(jsonrpc2.AppendResponse(nil, salvageID(body), nil, problem(body, err)))
		clear(body)
		if err != nil {
			return nil, 0, err
		}
	}
}

// readFrame reads one message's headers and body. Broken framing gives an error wrapping
// ErrFraming; io.EOF means the input ended cleanly between messages.
func (s *Stream) readFrame() ([]byte, int64, error) {
	total := 0
	length, headers := -1, 0
	for {
		raw, err := s.in.ReadSlice('\n')
		total += len(raw)
		switch {
		case errors.Is(err, bufio.ErrBufferFull) || len(raw) > maxHeaderLine:
			return nil, 0, fmt.Errorf("%w: a header line is longer than %d bytes", ErrFraming, maxHeaderLine)
		case err == io.EOF && total == 0:
			return nil, 0, io.EOF
		case err == io.EOF:
			return nil, 0, fmt.Errorf("%w: the input ended inside a message's headers", ErrFraming)
		case err != nil:
			return nil, 0, fmt.Errorf("read header: %w", err)
		}
		line := bytes.TrimRight(raw, "\r\n")
		if len(line) == 0 {
			if headers == 0 {
				continue // tolerate blank lines between messages
			}
			if length < 0 {
				return nil, 0, fmt.Errorf("%w: a message without Content-Length", ErrFraming)
			}
			break
		}
		headers++
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, 0, fmt.Errorf("%w: a header line (%d bytes) is not \"Name: value\"", ErrFraming, len(line))
		}
		if bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")) {
			n, ok := parseLength(bytes.TrimSpace(value))
			switch {
			case !ok:
				return nil, 0, fmt.Errorf("%w: Content-Length %q is not a length", ErrFraming, wire.Clip(strings.TrimSpace(string(value)), 32))
			case length >= 0:
				return nil, 0, fmt.Errorf("%w: a message with two Content-Length headers", ErrFraming)
			}
			length = n
		}
	}
	if length > MaxMessageBytes {
		// Skip it and say so; the framing stays intact.
		if _, err := io.CopyN(io.Discard, s.in, int64(length)); err != nil {
			return nil, 0, bodyError(err)
		}
		msg := fmt.Sprintf("message of %d bytes is over the limit of %d", length, MaxMessageBytes)
		if err := s.writeBody(jsonrpc2.AppendResponse(nil, jsonrpc2.ID{}, nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, msg))); err != nil {
			return nil, 0, err
		}
		return s.readFrame()
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(s.in, body); err != nil {
		return nil, 0, bodyError(err)
	}
	return body, int64(total + length), nil
}

// tellFraming says in the editor's log why the server stops: the editor only sees the
// process end.
func (s *Stream) tellFraming(err error) {
	params, merr := protocol.Marshal(&protocol.LogMessageParams{
		Type:    protocol.MessageTypeError,
		Message: "codingplan-lsp: stopping: " + err.Error() + " on stdin; nothing after it can be read",
	})
	if merr == nil {
		_ = s.writeBody(jsonrpc2.AppendNotification(nil, protocol.MethodWindowLogMessage, params))
	}
}

// parseLength parses a Content-Length value: decimal digits, at most 2^63-1.
func parseLength(v []byte) (int, bool) {
	if len(v) == 0 {
		return 0, false
	}
	n := uint64(0)
	for _, c := range v {
		if c < '0' || c > '9' || n > (1<<63-1-uint64(c-'0'))/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return int(n), true
}

// bodyError describes a failed read of a message's body.
func bodyError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the input ended inside a message's body (shorter than its Content-Length)", ErrFraming)
	}
	return fmt.Errorf("read body: %w", err)
}

// Write writes msg as one frame.
func (s *Stream) Write(ctx context.Context, msg jsonrpc2.Message) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	frame := jsonrpc2.AppendMessage(make([]byte, frameStart, frameStart+256), msg)
	n, err := s.writeFrame(frame)
	return int64(n), err
}

// frameStart is the room left before a message's JSON for its Content-Length header.
const frameStart = len("Content-Length: 12345678901\r\n\r\n")

// writeBody writes one message whose JSON is body.
func (s *Stream) writeBody(body []byte) error {
	_, err := s.writeFrame(append(make([]byte, frameStart, frameStart+len(body)), body...))
	return err
}

// writeFrame writes one message built after frameStart bytes of room: the header goes into
// that room, so the message goes out in one write. The lock covers that write only; the
// frame is cleared after it (a reply can carry a suggestion).
func (s *Stream) writeFrame(frame []byte) (int, error) {
	body := frame[frameStart:]
	if s.trace != nil {
		s.trace("send", body)
	}
	var hdr [frameStart]byte
	h := append(hdr[:0], "Content-Length: "...)
	h = strconv.AppendInt(h, int64(len(body)), 10)
	h = append(h, "\r\n\r\n"...)
	start := frameStart - len(h)
	copy(frame[start:], h)
	s.wmu.Lock()
	n, err := s.out.Write(frame[start:])
	s.wmu.Unlock()
	clear(frame)
	if err != nil {
		return n, fmt.Errorf("write message: %w", err)
	}
	return n, nil
}

// Close closes the underlying stream.
func (s *Stream) Close() error { return s.closer.Close() }

// problem is the error response to a body DecodeMessage refused, in words a client author
// can act on.
func problem(body []byte, err error) *jsonrpc2.Error {
	if !json.Valid(body) {
		return jsonrpc2.NewError(jsonrpc2.ParseError, "parse error: the message is not valid JSON")
	}
	var head struct {
		Version any             `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  any             `json:"method"`
	}
	switch {
	case json.Unmarshal(body, &head) != nil:
		return jsonrpc2.NewError(jsonrpc2.InvalidRequest, "invalid request: a message must be a JSON object")
	case head.Version != "2.0":
		return jsonrpc2.NewError(jsonrpc2.InvalidRequest, `invalid request: not a JSON-RPC 2.0 message (jsonrpc must be "2.0")`)
	case len(head.ID) > 0 && !salvageID(body).IsValid() && string(head.ID) != "null":
		return jsonrpc2.NewError(jsonrpc2.InvalidRequest, "invalid request: the id must be a string or an integer")
	}
	if _, ok := head.Method.(string); head.Method != nil && !ok {
		return jsonrpc2.NewError(jsonrpc2.InvalidRequest, "invalid request: the method must be a string")
	}
	return jsonrpc2.NewError(jsonrpc2.InvalidRequest, "invalid request: "+err.Error())
}

// salvageID returns the id of a message that could not be decoded, when it has a usable one
// (a string or an integer), else the null id.
func salvageID(body []byte) jsonrpc2.ID {
	var head struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(body, &head) != nil {
		return jsonrpc2.ID{}
	}
	id, _ := ParseID(head.ID, false)
	return id
}

// ParseID parses a JSON request id: a string or an integer; with lenient, also a number with
// an integral value spelled as a float (1.0, 1e0), as a client may echo it in $/cancelRequest.
func ParseID(raw json.RawMessage, lenient bool) (jsonrpc2.ID, bool) {
	raw = json.RawMessage(strings.TrimSpace(string(raw)))
	if len(raw) == 0 {
		return jsonrpc2.ID{}, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return jsonrpc2.ID{}, false
		}
		return jsonrpc2.NewStringID(s), true
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return jsonrpc2.NewNumberID(n), true
	}
	if f, err := strconv.ParseFloat(string(raw), 64); lenient && err == nil && f == float64(int64(f)) {
		return jsonrpc2.NewNumberID(int64(f)), true
	}
	return jsonrpc2.ID{}, false
}

// wipeReader clears p before each read, which io.Reader allows ("Read may use all of p as
// scratch space"): the bufio.Reader above hands its whole buffer to Read once it has consumed
// all it held, so the messages it read (documents, edits) do not stay in it.
type wipeReader struct{ r io.Reader }

func (w wipeReader) Read(p []byte) (int, error) {
	clear(p)
	return w.r.Read(p)
}
