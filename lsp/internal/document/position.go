package document

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"go.lsp.dev/protocol"
)

// Encoding is the unit an LSP Position's character counts, negotiated at initialize.
type Encoding int

// The position encodings. UTF16 is the zero value: LSP's default, which every client supports.
const (
	UTF16 Encoding = iota
	UTF8
	UTF32
)

// Kind returns the encoding's LSP name (a PositionEncodingKind).
func (e Encoding) Kind() string {
	switch e {
	case UTF8:
		return "utf-8"
	case UTF32:
		return "utf-32"
	}
	return "utf-16"
}

func (e Encoding) String() string { return e.Kind() }

// ParseEncoding returns the encoding an LSP PositionEncodingKind names.
func ParseEncoding(kind string) (Encoding, bool) {
	switch kind {
	case "utf-16":
		return UTF16, true
	case "utf-8":
		return UTF8, true
	case "utf-32":
		return UTF32, true
	}
	return UTF16, false
}

// ErrPosition is wrapped by every error about a position or range outside a document.
var ErrPosition = errors.New("position outside the document")

// units returns how many units of e the character that starts at s[0] counts, and its length
// in bytes. A byte that does not start valid UTF-8 counts as one unit of one byte in every
// encoding (it would be U+FFFD, one UTF-16 and one UTF-32 unit).
func units(e Encoding, s string) (n, size int) {
	c := s[0]
	if c < utf8.RuneSelf {
		return 1, 1
	}
	r, size := utf8.DecodeRuneInString(s)
	switch {
	case r == utf8.RuneError && size == 1:
		return 1, 1
	case e == UTF8:
		return size, size
	case e == UTF16 && r >= 0x10000:
		return 2, size
	}
	return 1, size
}

// Offset returns the byte offset of p in d, counting p.Character in units of e.
//
// As LSP says, a character past the end of its line means the end of the line (before the
// line terminator). A character in the middle of a character (half of a UTF-16 surrogate pair,
// say) means the start of that character. A line past the last line is an error wrapping
// ErrPosition, except the line just after the last with character 0, which some clients use
// for the end of the document.
func (d *Doc) Offset(e Encoding, p protocol.Position) (int, error) {
	line, lines := int(p.Line), d.Lines()
	if line >= lines {
		if line == lines && p.Character == 0 {
			return len(d.Text), nil
		}
		return 0, fmt.Errorf("%w: line %d, but the document has %d lines", ErrPosition, line, lines)
	}
	start, end := d.lineBounds(line)
	if e == UTF8 {
		// Byte counts need no walk; round down to the start of a character.
		return runeStart(d.Text, min(start+int(p.Character), end), start), nil
	}
	want := int(p.Character)
	n, off := 0, start
	for off < end && n < want {
		u, size := units(e, d.Text[off:end])
		if n+u > want {
			break // inside a surrogate pair: round down
		}
		n += u
		off += size
	}
	return off, nil
}

// runeStart rounds off down to the start of the valid multi-byte character it is inside of, if
// any, not going below floor.
func runeStart(s string, off, floor int) int {
	if off >= len(s) || utf8.RuneStart(s[off]) {
		return off
	}
	for i := off - 1; i >= floor && i >= off-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(s[i]) {
			if r, size := utf8.DecodeRuneInString(s[i:]); !(r == utf8.RuneError && size == 1) && i+size > off {
				return i
			}
			return off
		}
	}
	return off
}

// Position returns the position of byte offset off in d, in units of e. An offset past the end
// means the end; an offset inside a character or a line terminator rounds down to its start.
func (d *Doc) Position(e Encoding, off int) protocol.Position {
	off = max(0, min(off, len(d.Text)))
	line := d.lineOf(off)
	start, end := d.lineBounds(line)
	off = min(off, end)
	n, i := 0, start
	for i < off {
		u, size := units(e, d.Text[i:end])
		if i+size > off {
			break
		}
		n += u
		i += size
	}
	return protocol.Position{Line: uint32(line), Character: uint32(n)}
}

// Range returns the byte offsets of r in d. It fails when r ends before it starts.
func (d *Doc) Range(e Encoding, r protocol.Range) (start, end int, err error) {
	if start, err = d.Offset(e, r.Start); err != nil {
		return 0, 0, fmt.Errorf("range start: %w", err)
	}
	if end, err = d.Offset(e, r.End); err != nil {
		return 0, 0, fmt.Errorf("range end: %w", err)
	}
	if end < start {
		return 0, 0, fmt.Errorf("%w: range ends (%d:%d) before it starts (%d:%d)", ErrPosition,
			r.End.Line, r.End.Character, r.Start.Line, r.Start.Character)
	}
	return start, end, nil
}

// RangeOf returns the LSP range of the byte offsets [start, end) in d.
func (d *Doc) RangeOf(e Encoding, start, end int) protocol.Range {
	return protocol.Range{Start: d.Position(e, start), End: d.Position(e, end)}
}
