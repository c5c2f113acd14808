package document

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.lsp.dev/protocol"
)

func rng(sl, sc, el, ec uint32) *protocol.Range {
	return &protocol.Range{Start: pos(sl, sc), End: pos(el, ec)}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		enc     Encoding
		changes []Change
		want    string
	}{
		{"insert", "ab", UTF16, []Change{{rng(0, 1, 0, 1), "X"}}, "aXb"},
		{"full replacement", "ab", UTF16, []Change{{nil, "new"}}, "new"},
		{"replacement then insert", "ab", UTF16, []Change{{nil, "new"}, {rng(0, 3, 0, 3), "!"}}, "new!"},
		{"delete across CRLF", "a\r\nb", UTF16, []Change{{rng(0, 1, 1, 0), ""}}, "ab"},
		{"after emoji utf16", "😀x", UTF16, []Change{{rng(0, 2, 0, 3), "y"}}, "😀y"},
		{"after emoji utf32", "😀x", UTF32, []Change{{rng(0, 1, 0, 2), "y"}}, "😀y"},
		{"after emoji utf8", "😀x", UTF8, []Change{{rng(0, 4, 0, 5), "y"}}, "😀y"},
		{"sequential changes see earlier ones", "abc", UTF16, []Change{
			{rng(0, 0, 0, 1), "xx"}, {rng(0, 2, 0, 3), "Y"}}, "xxYc"},
		{"insert a line at the end", "a\n", UTF16, []Change{{rng(1, 0, 1, 0), "b\n"}}, "a\nb\n"},
		{"tab", "\tx", UTF16, []Change{{rng(0, 1, 0, 2), "y"}}, "\ty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New("u", "go", 1, tt.text)
			got, err := d.Apply(tt.enc, 2, tt.changes)
			if err != nil {
				t.Fatal(err)
			}
			if got.Text != tt.want || got.Version != 2 {
				t.Errorf("Apply = %q v%d, want %q v2", got.Text, got.Version, tt.want)
			}
			if d.Text != tt.text {
				t.Errorf("Apply changed the old version to %q", d.Text)
			}
		})
	}
}

func TestApplyOutside(t *testing.T) {
	d := New("u", "go", 1, "a\nb")
	_, err := d.Apply(UTF16, 2, []Change{{rng(0, 0, 0, 1), "x"}, {rng(7, 0, 7, 0), "y"}})
	if !errors.Is(err, ErrPosition) {
		t.Fatalf("err = %v, want ErrPosition", err)
	}
	if !strings.Contains(err.Error(), "content change 1") {
		t.Errorf("err %q does not say which change", err)
	}
}

func TestStore(t *testing.T) {
	s := NewStore()
	s.Open(New("a", "go", 1, "one"))
	s.Open(New("b", "go", 1, "two"))
	if _, err := s.Change("c", UTF16, 2, []Change{{nil, "x"}}); !errors.Is(err, ErrNotOpen) {
		t.Errorf("change of an unopened document: %v, want ErrNotOpen", err)
	}
	if _, err := s.Change("a", UTF16, 2, []Change{{rng(0, 3, 0, 3), "!"}}); err != nil {
		t.Fatal(err)
	}
	if got := s.Get("a"); got.Text != "one!" || got.Version != 2 {
		t.Errorf("a = %q v%d", got.Text, got.Version)
	}
	var order []string
	for _, d := range s.Recent("", 5) {
		order = append(order, d.URI)
	}
	if got, want := strings.Join(order, ","), "a,b"; got != want {
		t.Errorf("Recent = %s, want %s", got, want)
	}
	if got := s.Recent("a", 5); len(got) != 1 || got[0].URI != "b" {
		t.Errorf("Recent except a = %v", got)
	}
	s.Close("a")
	if s.Get("a") != nil || s.Len() != 1 {
		t.Error("Close did not forget a")
	}
}

// TestRandomEdits replays random incremental edits, made the way an editor makes them
// (positions in the client's encoding, never between CR and LF), and checks the result equals
// applying the same edits to the text directly.
func TestRandomEdits(t *testing.T) {
	pieces := []string{"a", "bc", "\t", " ", "\n", "\r\n", "\r", "😀", "é", "€", "𝄞x", "\xff", "func f() {\n", "}"}
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 7))
		enc := Encoding(r.IntN(3))
		var b strings.Builder
		for range r.IntN(30) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		want := b.String()
		d := New("u", "go", 0, want)
		for v := range int32(20) {
			var changes []Change
			for range 1 + r.IntN(3) {
				cur := New("u", "go", 0, want)
				start, end := boundary(r, want), boundary(r, want)
				if start > end {
					start, end = end, start
				}
				text := ""
				for range r.IntN(3) {
					text += pieces[r.IntN(len(pieces))]
				}
				if r.IntN(10) == 0 {
					changes = append(changes, Change{Text: text})
					want = text
					continue
				}
				changes = append(changes, Change{Range: new(cur.RangeOf(enc, start, end)), Text: text})
				want = want[:start] + text + want[end:]
			}
			var err error
			if d, err = d.Apply(enc, v+1, changes); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if d.Text != want {
				t.Fatalf("seed %d %v version %d: got %q, want %q", seed, enc, v+1, d.Text, want)
			}
		}
		if full := New("u", "go", 0, want); !equalLines(full, d) {
			t.Fatalf("seed %d: line index differs from a fresh one", seed)
		}
	}
}

// boundary picks a byte offset of s an editor could name: a character boundary, not between
// CR and LF.
func boundary(r *rand.Rand, s string) int {
	for {
		off := r.IntN(len(s) + 1)
		if off < len(s) && !utf8.RuneStart(s[off]) && runeStart(s, off, 0) != off {
			continue
		}
		if off > 0 && off < len(s) && s[off-1] == '\r' && s[off] == '\n' {
			continue
		}
		return off
	}
}

func equalLines(a, b *Doc) bool {
	return slices.Equal(a.lines(), b.lines())
}
