package wire

import (
	"bytes"
	"unicode/utf8"
)

// deltaHead and deltaText are the fixed parts of a delta frame as AppendDelta writes it.
const (
	deltaHead = `{"type":"delta","id":"`
	deltaText = `","text":`
)

// DecodeDelta decodes a delta frame of suggestion 0 written the way AppendDelta writes it (the
// backend's form: {"type":"delta","id":"...","text":"..."}, in that order, without spaces and
// without an index), for the client's
// hot path: no reflection, and one allocation, the text's own array (unescaped as
// AppendUnquote does). id is a slice of data. ok is false for anything else (a delta written
// another way, an id with escapes, invalid UTF-8): DecodeServer decodes those. For a frame
// DecodeDelta accepts, DecodeServer gives the same id and text.
func DecodeDelta(data []byte) (id, text []byte, ok bool) {
	if !bytes.HasPrefix(data, []byte(deltaHead)) || !bytes.HasSuffix(data, []byte(`"}`)) || !utf8.Valid(data) {
		return nil, nil, false
	}
	rest := data[len(deltaHead):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 || !bytes.HasPrefix(rest[end:], []byte(deltaText)) {
		return nil, nil, false
	}
	id = rest[:end]
	lit := rest[end+len(deltaText) : len(rest)-1] // the text's string literal, quotes included
	if len(lit) < 2 || lit[0] != '"' {
		return nil, nil, false
	}
	// The literal must be one string: no unescaped quote before its last byte, and no control
	// character (JSON forbids them in strings).
	for i := 1; i < len(lit)-1; i++ {
		switch c := lit[i]; {
		case c == '\\':
			i++
		case c == '"' || c < 0x20:
			return nil, nil, false
		}
	}
	if bytes.IndexFunc(id, func(r rune) bool { return r < 0x20 }) >= 0 {
		return nil, nil, false
	}
	out, err := AppendUnquote(text, lit)
	if err != nil {
		clear(out[len(text):cap(out)])
		return nil, nil, false
	}
	return id, out, true
}
