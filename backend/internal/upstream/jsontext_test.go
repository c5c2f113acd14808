package upstream

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	wire "github.com/codingplan/codingplan/shared"
)

func TestAppendUnquote(t *testing.T) {
	tests := []string{`""`, `"plain"`, `"a\"b\\c\/d"`, `"\b\f\n\r\t"`, `"\u00e9\u4e2d"`, `"\ud83d\ude00"`,
		`"\ud83d"`, `"\ud83dx"`, `"\ude00"`, `"\ud83d\u0041"`, `"é😀"`}
	for _, q := range tests {
		var want string
		if err := json.Unmarshal([]byte(q), &want); err != nil {
			t.Fatal(err)
		}
		got, err := appendUnquote(nil, []byte(q))
		if err != nil || string(got) != want {
			t.Errorf("appendUnquote(%s) = %q, %v; want %q", q, got, err, want)
		}
	}
	for _, bad := range []string{`"\x"`, `"\u12"`, `"\`, `x`} {
		if _, err := appendUnquote(nil, []byte(bad)); err == nil {
			t.Errorf("appendUnquote(%s) accepted it", bad)
		}
	}
}

func TestAppendEscaped(t *testing.T) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\x7f\n\r\t", "é😀\u2028", "\xff\xfe bad", "<&>"} {
		b := wire.AppendEscaped([]byte(`"`), s)
		b = append(b, '"')
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %s is not JSON: %v", s, b, err)
		}
		std, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(std, &want)
		if got != want {
			t.Errorf("round trip of %q = %q", s, got)
		}
	}
}

// FuzzJSONText checks appendUnquote against encoding/json on what encoding/json accepts.
func FuzzJSONText(f *testing.F) {
	for _, s := range []string{`"a"`, `"\ud83d\ude00"`, `"\u0000\n"`, `"\ud800\udbff"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		var want string
		if json.Unmarshal(q, &want) != nil || !utf8.Valid(q) {
			return
		}
		var got jsonText
		if err := json.Unmarshal(q, &got); err != nil {
			t.Fatalf("encoding/json accepts %q, jsonText: %v", q, err)
		}
		if string(got) != want {
			t.Fatalf("%q: got %q, want %q", q, got, want)
		}
	})
}
