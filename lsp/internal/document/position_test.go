package document

import (
	"errors"
	"testing"

	"go.lsp.dev/protocol"
)

func pos(line, char uint32) protocol.Position { return protocol.Position{Line: line, Character: char} }

// text used by the tables: a tab, CRLF, an emoji (astral: 4 bytes, 2 UTF-16 units, 1 UTF-32
// unit), a 2-byte and a 3-byte character, a lone CR and a final LF.
const sample = "\tfoo😀bar\r\né€x\rlast\n"

func TestOffset(t *testing.T) {
	d := New("file:///a", "go", 1, sample)
	tests := []struct {
		name string
		enc  Encoding
		p    protocol.Position
		want int
	}{
		{"start", UTF16, pos(0, 0), 0},
		{"after tab", UTF16, pos(0, 1), 1},
		{"before emoji", UTF16, pos(0, 4), 4},
		{"after emoji utf16", UTF16, pos(0, 6), 8},
		{"inside surrogate pair rounds down", UTF16, pos(0, 5), 4},
		{"after emoji utf32", UTF32, pos(0, 5), 8},
		{"after emoji utf8", UTF8, pos(0, 8), 8},
		{"inside emoji utf8 rounds down", UTF8, pos(0, 6), 4},
		{"end of line before CRLF", UTF16, pos(0, 9), 11},
		{"past end of line clamps before CRLF", UTF16, pos(0, 99), 11},
		{"second line start", UTF16, pos(1, 0), 13},
		{"after é utf16", UTF16, pos(1, 1), 15},
		{"after é utf8", UTF8, pos(1, 2), 15},
		{"inside é utf8 rounds down", UTF8, pos(1, 1), 13},
		{"after € utf16", UTF16, pos(1, 2), 18},
		{"after € utf8", UTF8, pos(1, 5), 18},
		{"lone CR ends line", UTF16, pos(1, 9), 19},
		{"line after lone CR", UTF16, pos(2, 2), 22},
		{"empty last line", UTF16, pos(3, 0), 25},
		{"empty last line clamps", UTF16, pos(3, 7), 25},
		{"one past last line, char 0, is the end", UTF16, pos(4, 0), 25},
	}
	if got, want := len(sample), 25; got != want {
		t.Fatalf("len(sample) = %d, want %d", got, want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Offset(tt.enc, tt.p)
			if err != nil {
				t.Fatalf("Offset(%v, %+v): %v", tt.enc, tt.p, err)
			}
			if got != tt.want {
				t.Errorf("Offset(%v, %+v) = %d, want %d", tt.enc, tt.p, got, tt.want)
			}
		})
	}
}

func TestOffsetErrors(t *testing.T) {
	d := New("file:///a", "go", 1, sample)
	for _, p := range []protocol.Position{pos(4, 1), pos(5, 0), pos(1<<31, 0)} {
		if _, err := d.Offset(UTF16, p); !errors.Is(err, ErrPosition) {
			t.Errorf("Offset(%+v) error = %v, want ErrPosition", p, err)
		}
	}
	if _, _, err := d.Range(UTF16, protocol.Range{Start: pos(1, 0), End: pos(0, 0)}); !errors.Is(err, ErrPosition) {
		t.Errorf("reversed range error = %v, want ErrPosition", err)
	}
}

func TestPosition(t *testing.T) {
	d := New("file:///a", "go", 1, sample)
	tests := []struct {
		name string
		enc  Encoding
		off  int
		want protocol.Position
	}{
		{"start", UTF16, 0, pos(0, 0)},
		{"after emoji utf16", UTF16, 8, pos(0, 6)},
		{"after emoji utf32", UTF32, 8, pos(0, 5)},
		{"after emoji utf8", UTF8, 8, pos(0, 8)},
		{"inside emoji rounds down", UTF16, 6, pos(0, 4)},
		{"between CR and LF is end of line", UTF16, 12, pos(0, 9)},
		{"second line", UTF16, 15, pos(1, 1)},
		{"after € utf32", UTF32, 18, pos(1, 2)},
		{"lone CR", UTF16, 19, pos(1, 3)},
		{"third line", UTF16, 20, pos(2, 0)},
		{"end", UTF16, 25, pos(3, 0)},
		{"past end clamps", UTF16, 99, pos(3, 0)},
		{"negative clamps", UTF16, -3, pos(0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.Position(tt.enc, tt.off); got != tt.want {
				t.Errorf("Position(%v, %d) = %+v, want %+v", tt.enc, tt.off, got, tt.want)
			}
		})
	}
}

func TestInvalidUTF8(t *testing.T) {
	// Each invalid byte counts as one unit in every encoding, like U+FFFD would.
	d := New("file:///a", "go", 1, "a\xffb\xe2\x82c")
	for _, enc := range []Encoding{UTF8, UTF16, UTF32} {
		for off := 0; off <= len(d.Text); off++ {
			p := d.Position(enc, off)
			if got, err := d.Offset(enc, p); err != nil || got != off {
				t.Errorf("%v: Offset(Position(%d)=%+v) = %d, %v; want %d", enc, off, p, got, err, off)
			}
		}
	}
}

func TestParseEncoding(t *testing.T) {
	for _, e := range []Encoding{UTF8, UTF16, UTF32} {
		got, ok := ParseEncoding(e.Kind())
		if !ok || got != e {
			t.Errorf("ParseEncoding(%q) = %v, %v", e.Kind(), got, ok)
		}
	}
	if _, ok := ParseEncoding("utf-7"); ok {
		t.Error("ParseEncoding(utf-7) ok")
	}
}

func TestLines(t *testing.T) {
	tests := []struct {
		text string
		want int
	}{{"", 1}, {"a", 1}, {"a\n", 2}, {"a\r\nb", 2}, {"a\rb\n", 3}, {"\r\n\r\n", 3}, {"\n\r", 3}}
	for _, tt := range tests {
		if got := New("u", "", 0, tt.text).Lines(); got != tt.want {
			t.Errorf("Lines(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}
}

// FuzzPosition checks the position math on any text: offsets map to positions and back to
// the same offset, rounded down to a character boundary; no position panics.
func FuzzPosition(f *testing.F) {
	f.Add(sample, 7, uint32(0), uint32(5))
	f.Add("a\r\n😀\rb\xff\xe2\x82", 3, uint32(1), uint32(1))
	f.Add("", 0, uint32(0), uint32(0))
	f.Fuzz(func(t *testing.T, text string, off int, line, char uint32) {
		d := New("u", "", 0, text)
		for _, enc := range []Encoding{UTF8, UTF16, UTF32} {
			p := d.Position(enc, off)
			got, err := d.Offset(enc, p)
			if err != nil {
				t.Fatalf("%v: Offset(Position(%d)) error: %v", enc, off, err)
			}
			if got < 0 || got > len(text) || (off >= 0 && off <= len(text) && got > off) {
				t.Fatalf("%v: Offset(Position(%d)=%+v) = %d, out of range", enc, off, p, got)
			}
			if back := d.Position(enc, got); back != p {
				t.Fatalf("%v: Position(%d) = %+v, but Position(%d) = %+v", enc, off, p, got, back)
			}
			o, err := d.Offset(enc, pos(line, char))
			if err != nil {
				if !errors.Is(err, ErrPosition) {
					t.Fatalf("error %v does not wrap ErrPosition", err)
				}
				continue
			}
			if o < 0 || o > len(text) {
				t.Fatalf("%v: Offset(%d:%d) = %d, out of range", enc, line, char, o)
			}
			if q := d.Position(enc, o); q.Line != line && !(int(line) == d.Lines() && o == len(text)) {
				t.Fatalf("%v: Offset(%d:%d) = %d is on line %d", enc, line, char, o, q.Line)
			}
		}
	})
}
