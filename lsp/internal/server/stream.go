package server

import (
	"bufio"
	"bytes"
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

// maxHeaderLine bounds one header line; the base protocol's are a few dozen bytes.
const maxHeaderLine = 4 << 10

// ErrFraming wraps the error that ends a stream whose base protocol framing is broken: a
// header line that is not "Name: value" or is too long, a missing, repeated or bad
// Content-Length, or input that ends inside a message.
var ErrFraming = errors.New("broken message framing")

// stream speaks LSP's base protocol (Content-Length framing). It survives a message that is
// not JSON-RPC: it answers ParseError (or InvalidRequest) with a null id and reads on. Broken
// framing (a bad header) still ends the stream, with an error wrapping ErrFraming: nothing
// after it can be trusted.
type stream struct {
	in     *bufio.Reader
	out    io.Writer
	closer io.Closer
	wmu    sync.Mutex // held while a message is written
	// trace, when set, sees every message read ("recv") or written ("send").
	trace func(dir string, body []byte)
}

func newStream(rwc io.ReadWriteCloser, trace func(dir string, body []byte)) *stream {
	return &stream{in: bufio.NewReaderSize(wipeReader{rwc}, 64<<10), out: rwc, closer: rwc, trace: trace}
}

// Read returns the next message. A message that is not JSON-RPC is answered with an error
// response here and skipped.
func (s *stream) Read() (*rpcMsg, error) {
	for {
		body, err := s.readFrame()
		if err != nil {
			return nil, err
		}
		if s.trace != nil {
			s.trace("recv", body)
		}
		msg, err := decodeMessage(body) // copies what it keeps of body
		if err == nil {
			clear(body)
			return msg, nil
		}
		var rpcErr *jsonrpc2.Error
		if !errors.As(err, &rpcErr) {
			rpcErr = jsonrpc2.NewError(jsonrpc2.InternalError, err.Error())
		}
		err = s.writeRaw(errorResponse(body, rpcErr))
		clear(body)
		if err != nil {
			return nil, err
		}
	}
}

// readFrame reads one message's headers and body. Broken framing gives an error wrapping
// ErrFraming; io.EOF means the input ended cleanly between messages.
func (s *stream) readFrame() ([]byte, error) {
	total := 0
	length, headers := -1, 0
	for {
		raw, err := s.in.ReadSlice('\n')
		total += len(raw)
		switch {
		case errors.Is(err, bufio.ErrBufferFull) || len(raw) > maxHeaderLine:
			return nil, fmt.Errorf("%w: a header line is longer than %d bytes", ErrFraming, maxHeaderLine)
		case err == io.EOF && total == 0:
			return nil, io.EOF
		case err == io.EOF:
			return nil, fmt.Errorf("%w: the input ended inside a message's headers", ErrFraming)
		case err != nil:
			return nil, fmt.Errorf("read header: %w", err)
		}
		line := strings.TrimRight(string(raw), "\r\n")
		if line == "" {
			if headers == 0 {
				continue // tolerate blank lines between messages
			}
			if length < 0 {
				return nil, fmt.Errorf("%w: a message without Content-Length", ErrFraming)
			}
			break
		}
		headers++
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: a header line (%d bytes) is not \"Name: value\"", ErrFraming, len(line))
		}
		if textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name)) == "Content-Length" {
			n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 63)
			switch {
			case err != nil:
				return nil, fmt.Errorf("%w: Content-Length %q is not a length", ErrFraming, clip(value))
			case length >= 0:
				return nil, fmt.Errorf("%w: a message with two Content-Length headers", ErrFraming)
			}
			length = int(n)
		}
	}
	if length > maxMessageBytes {
		// Skip it and say so; the framing stays intact.
		if _, err := io.CopyN(io.Discard, s.in, int64(length)); err != nil {
			return nil, bodyError(err)
		}
		msg := fmt.Sprintf("message of %d bytes is over the limit of %d", length, maxMessageBytes)
		if err := s.writeRaw(errorResponse(nil, jsonrpc2.NewError(jsonrpc2.InvalidRequest, msg))); err != nil {
			return nil, err
		}
		return s.readFrame()
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(s.in, body); err != nil {
		return nil, bodyError(err)
	}
	return body, nil
}

// bodyError describes a failed read of a message's body.
func bodyError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the input ended inside a message's body (shorter than its Content-Length)", ErrFraming)
	}
	return fmt.Errorf("read body: %w", err)
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

// writeRaw writes one message whose JSON is body.
func (s *stream) writeRaw(body []byte) error {
	frame := newFrame(len(body))
	return s.writeFrame(append(frame, body...))
}

// writeFrame writes one message built by newFrame: the header goes into the room before the
// JSON, so the message goes out in one write. The lock covers that write only.
func (s *stream) writeFrame(frame []byte) error {
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
	_, err := s.out.Write(frame[start:])
	s.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	return nil
}

// Close closes the stream.
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

// wipeReader clears p before each read, which io.Reader allows ("Read may use all of p as
// scratch space"): the bufio.Reader above hands its whole buffer to Read once it has consumed
// all it held, so the messages it read (documents, edits) do not stay in it.
type wipeReader struct{ r io.Reader }

func (w wipeReader) Read(p []byte) (int, error) {
	clear(p)
	return w.r.Read(p)
}
