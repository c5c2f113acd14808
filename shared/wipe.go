package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Content decoded from a frame lives in memory that the decoded Text alone owns, so that the
// server can overwrite it once a stream ends (ClientFrame.Wipe): a Go string cannot be
// cleared, but the array under a string made here is not shared with anything else.

// UnmarshalJSON implements json.Unmarshaler. It unescapes the JSON string into one array of
// its own, without the temporary copies encoding/json leaves behind for strings with escapes.
// Like encoding/json, it turns invalid UTF-8 and lone surrogates into U+FFFD.
func (t *Text) UnmarshalJSON(data []byte) error {
	if len(data) == 0 || data[0] != '"' {
		if string(data) == "null" {
			return nil // as encoding/json does: null leaves a string unchanged
		}
		return &json.UnmarshalTypeError{Value: jsonKind(data), Type: reflect.TypeFor[Text]()}
	}
	b, err := unquote(data)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		*t = ""
		return nil
	}
	*t = Text(unsafe.String(&b[0], len(b)))
	return nil
}

func jsonKind(data []byte) string {
	if len(data) == 0 {
		return "nothing"
	}
	switch data[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "number"
}

// ErrBadString is returned by AppendUnquote for what is not a JSON string literal.
var ErrBadString = errors.New("bad JSON string")

// unquote decodes the JSON string literal q (quotes included) into a new array.
func unquote(q []byte) ([]byte, error) { return AppendUnquote(nil, q) }

// AppendUnquote appends the JSON string literal q (with its quotes) to dst, unescaped, as
// encoding/json decodes it: invalid UTF-8 and lone surrogates become U+FFFD. Room is made
// first (see Grow), so dst's array is either kept or cleared, never left behind with content.
func AppendUnquote(dst, q []byte) ([]byte, error) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return dst, ErrBadString
	}
	s := q[1 : len(q)-1]
	size := len(s) // an escape never decodes to more bytes than it takes
	if !utf8.Valid(s) {
		size = 3 * len(s) // each invalid byte becomes the 3 bytes of U+FFFD
	}
	dst = Grow(dst, size)
	for {
		i := bytes.IndexByte(s, '\\')
		if i < 0 {
			return appendValid(dst, s), nil
		}
		dst = appendValid(dst, s[:i])
		s = s[i:]
		if len(s) < 2 {
			return dst, ErrBadString
		}
		switch c := s[1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s[2:])
			if !ok {
				return dst, ErrBadString
			}
			n := 6
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
					r2, ok = hex4(s[8:])
				}
				if r = utf16.DecodeRune(r, r2); ok && r != utf8.RuneError {
					n = 12
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			s = s[n:]
			continue
		default:
			return dst, ErrBadString
		}
		s = s[2:]
	}
}

// appendValid appends s with each invalid UTF-8 byte replaced by U+FFFD.
func appendValid(dst, s []byte) []byte {
	if utf8.Valid(s) {
		return append(dst, s...)
	}
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[:n]...)
		}
		s = s[n:]
	}
	return dst
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Wipe overwrites every Text of a frame that DecodeClient returned, and empties them. It is
// for frames DecodeClient made only, once nothing reads them any more: their Texts own their
// memory (see UnmarshalJSON), while a Text made any other way may be a constant in read-only
// memory or shared.
func (f *ClientFrame) Wipe() {
	for i := range f.Stop {
		wipe(&f.Stop[i])
	}
	if c := f.Completion; c != nil {
		wipe(&c.Prefix)
		wipe(&c.Suffix)
		for i := range c.Snippets {
			wipe(&c.Snippets[i].Text)
		}
	}
	if e := f.Edit; e != nil {
		wipe(&e.Instruction)
		wipe(&e.Selection)
		wipe(&e.Prefix)
		wipe(&e.Suffix)
		for i := range e.Diagnostics {
			wipe(&e.Diagnostics[i])
		}
	}
}

func wipe(t *Text) {
	if len(*t) > 0 {
		clear(unsafe.Slice(unsafe.StringData(string(*t)), len(*t)))
		*t = ""
	}
}

// Grow returns b with room for n more bytes. When b's array is too small, its bytes move to a
// larger one and the old array is cleared: append would leave them behind for the garbage
// collector, which frees memory without overwriting it. For buffers that hold content.
func Grow(b []byte, n int) []byte {
	if len(b)+n <= cap(b) {
		return b
	}
	grown := make([]byte, len(b), max(2*cap(b), len(b)+n))
	copy(grown, b)
	clear(b[:cap(b)])
	return grown
}

// AppendClear appends src to dst, clearing dst's array if it has to move (see Grow).
func AppendClear(dst, src []byte) []byte {
	return append(Grow(dst, len(src)), src...)
}
