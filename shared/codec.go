package wire

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// DecodeClient parses and validates one client frame. The error is an *Error with the code to
// send back: too_large, or bad_request with a message that names the problem (never content).
// When the frame names a stream, the returned frame's ID is set even on error, so the server
// can end that stream.
func DecodeClient(data []byte) (ClientFrame, error) {
	var f ClientFrame
	if len(data) > MaxFrameBytes {
		return f, Errorf(CodeTooLarge, "frame is %d bytes, the limit is %d", len(data), MaxFrameBytes)
	}
	if !utf8.Valid(data) {
		return f, Errorf(CodeBadRequest, "frame is not valid UTF-8")
	}
	if err := json.Unmarshal(data, &f); err != nil {
		f.Wipe() // what was decoded before the error
		return ClientFrame{}, Errorf(CodeBadRequest, "frame is not a JSON object of this protocol: %s", jsonProblem(err))
	}
	if len(f.ID) > MaxIDBytes {
		f.ID = ""
		return f, Errorf(CodeBadRequest, "id is longer than %d bytes", MaxIDBytes)
	}
	if !validID(f.ID) {
		f.ID = "" // never echo an id a peer could not have meant
		return f, Errorf(CodeBadRequest, "id holds a control character or invalid UTF-8")
	}
	return f, f.validate()
}

// validID reports whether id holds no control character (C0, DEL, C1) and no U+FFFD, which is
// what encoding/json makes of invalid UTF-8 and of lone surrogates (\ud800): such an id would
// be echoed altered, and control characters would reach terminals and logs.
func validID(id string) bool {
	for _, r := range id {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func (f *ClientFrame) validate() error {
	switch f.Type {
	case TypeRequest:
		return f.validateRequest()
	case TypeCancel:
		if f.ID == "" {
			return Errorf(CodeBadRequest, "cancel needs the id of the stream to cancel")
		}
	case TypeAuth:
		if f.Token == "" {
			return Errorf(CodeBadRequest, "auth needs a token")
		}
	case TypePing:
	case "":
		return Errorf(CodeBadRequest, "frame has no type")
	default:
		return Errorf(CodeBadRequest, "unknown frame type %q", Clip(f.Type, clipName))
	}
	return nil
}

func (f *ClientFrame) validateRequest() error {
	if f.ID == "" {
		return Errorf(CodeBadRequest, "request needs an id")
	}
	if f.MaxTokens < 0 || f.MaxTokens > MaxTokensLimit {
		return Errorf(CodeBadRequest, "max_tokens must be between 0 and %d", MaxTokensLimit)
	}
	if len(f.Stop) > MaxStopSequences {
		return Errorf(CodeBadRequest, "at most %d stop sequences", MaxStopSequences)
	}
	for _, s := range f.Stop {
		if s == "" {
			return Errorf(CodeBadRequest, "stop sequences must not be empty")
		}
	}
	switch f.Op {
	case OpCompletion:
		if f.Completion == nil || f.Edit != nil {
			return Errorf(CodeBadRequest, "a completion request carries completion and no edit")
		}
		if f.Completion.N < 0 {
			return Errorf(CodeBadRequest, "n must not be negative")
		}
	case OpEdit:
		if f.Edit == nil || f.Completion != nil {
			return Errorf(CodeBadRequest, "an edit request carries edit and no completion")
		}
		if f.Edit.Instruction == "" {
			return Errorf(CodeBadRequest, "an edit request needs an instruction")
		}
	case "":
		return Errorf(CodeBadRequest, "request needs an op")
	default:
		return Errorf(CodeBadRequest, "unknown op %q", Clip(f.Op, clipName))
	}
	return nil
}

// DecodeServer parses one server frame. Unknown frame types decode without error: clients
// ignore them.
func DecodeServer(data []byte) (ServerFrame, error) {
	var f ServerFrame
	if !utf8.Valid(data) {
		return f, Errorf(CodeBadRequest, "server frame is not valid UTF-8")
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return ServerFrame{}, Errorf(CodeBadRequest, "server frame is not a JSON object of this protocol: %s", jsonProblem(err))
	}
	if f.Type == "" {
		return f, Errorf(CodeBadRequest, "server frame has no type")
	}
	return f, nil
}

// Marshal encodes a frame of either direction without HTML escaping.
func Marshal(frame any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(frame); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// AppendDelta appends the delta frame for suggestion index of stream id carrying text to dst.
// It writes the same frame as Marshal(ServerFrame{Type: TypeDelta, ID: id, Index: index, Text:
// Text(text)}) without reflection or allocation, for the hot path. Invalid UTF-8 in text
// becomes U+FFFD, as encoding/json does.
func AppendDelta(dst []byte, id string, index int, text []byte) []byte {
	dst = append(dst, `{"type":"delta","id":`...)
	dst = appendString(dst, id)
	if index != 0 {
		dst = append(dst, `,"index":`...)
		dst = strconv.AppendInt(dst, int64(index), 10)
	}
	dst = append(dst, `,"text":`...)
	dst = appendString(dst, text)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	dst = AppendEscaped(dst, s)
	return append(dst, '"')
}

// AppendEscaped appends s escaped for the inside of a JSON string, without the quotes: what
// JSON requires, plus U+2028 and U+2029, with invalid UTF-8 replaced by U+FFFD, as
// encoding/json writes it. Builders of JSON bodies that carry content use it to write a string
// in pieces.
func AppendEscaped[S string | []byte](dst []byte, s S) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		var r rune
		var size int
		switch v := any(s).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(v[i:])
		case []byte:
			r, size = utf8.DecodeRune(v[i:])
		}
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// jsonProblem describes a decoding error by its kind and offset only: json's own messages can
// quote the input.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return "syntax error at byte " + strconv.FormatInt(e.Offset, 10)
	case *json.UnmarshalTypeError:
		return "field " + Clip(e.Field, clipName) + " has the wrong type"
	}
	return "not a JSON object"
}

// clipName is how much of a client-chosen name an error message quotes (see Clip).
const clipName = 32
