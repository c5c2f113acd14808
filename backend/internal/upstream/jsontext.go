package upstream

import (
	"strconv"

	wire "github.com/codingplan/codingplan/shared"
)

// jsonText decodes a JSON string (or null, as empty) into a byte slice whose capacity it
// keeps from one decode to the next, so that reading a chunk's text does not allocate.
type jsonText []byte

var errBadString = wire.ErrBadString

// UnmarshalJSON implements json.Unmarshaler. encoding/json has already checked that data is
// valid JSON.
func (t *jsonText) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*t = (*t)[:0]
		return nil
	}
	b, err := appendUnquote((*t)[:0], data)
	*t = b
	return err
}

// appendUnquote appends the JSON string literal q (with its quotes) to dst, unescaped (see
// wire.AppendUnquote).
func appendUnquote(dst, q []byte) ([]byte, error) { return wire.AppendUnquote(dst, q) }

// body builds a JSON request body by appending, so that content goes straight from the
// request's strings into one byte slice that Stream clears after use.
type body struct {
	b      []byte
	prompt int // bytes of content written, for the usage estimate
}

// raw appends JSON text as is.
func (w *body) raw(s string) { w.b = append(w.grow(len(s)), s...) }

// grow makes room for n more bytes (see wire.Grow): b holds content, so an array it outgrows
// is cleared, not left to the garbage collector.
func (w *body) grow(n int) []byte {
	w.b = wire.Grow(w.b, n)
	return w.b
}

// str appends the parts as one JSON string.
func (w *body) str(parts ...string) {
	w.open()
	for _, p := range parts {
		w.text(p)
	}
	w.close()
}

// open starts a JSON string; text appends to it; close ends it.
func (w *body) open()  { w.b = append(w.grow(1), '"') }
func (w *body) close() { w.b = append(w.grow(1), '"') }

// text appends s escaped, inside a string started with open.
func (w *body) text(s string) {
	w.prompt += len(s)
	// Room for an escape per byte first; if escapes need more still, the array left behind
	// is cleared.
	old := w.grow(2*len(s) + 2)
	w.b = wire.AppendEscaped(w.b, s)
	if cap(w.b) != cap(old) {
		clear(old[:cap(old)])
	}
}

// int appends a JSON number.
func (w *body) int(n int) { w.b = strconv.AppendInt(w.grow(20), int64(n), 10) }

// strs appends a JSON array of strings.
func (w *body) strs(list []string) {
	w.b = append(w.grow(1), '[')
	for i, s := range list {
		if i > 0 {
			w.b = append(w.grow(1), ',')
		}
		w.str(s)
	}
	w.b = append(w.grow(1), ']')
}
