package wire

import (
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

var errBadString = errors.New("invalid JSON string")

// unquote decodes the JSON string literal q (quotes included) into a new array.
func unquote(q []byte) ([]byte, error) {
	if len(q) < 2 || q[len(q)-1] != '"' {
		return nil, errBadString
	}
	s := q[1 : len(q)-1]
	size := len(s) // an escape never decodes to more bytes than it takes
	if !utf8.Valid(s) {
		size = 3 * len(s) // each invalid byte becomes the 3 bytes of U+FFFD
	}
	b := make([]byte, 0, size)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errBadString
			}
			i++
			switch e := s[i]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := hex4(s[i+1:])
				if !ok {
					return nil, errBadString
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2, ok := rune(-1), false
					if i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
						r2, ok = hex4(s[i+3:])
					}
					if d := utf16.DecodeRune(r, r2); ok && d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				return nil, errBadString
			}
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
		}
	}
	return b, nil
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
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
