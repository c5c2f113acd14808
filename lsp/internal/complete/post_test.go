package complete

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// cursor marks the cursor in test documents.
const cursor = "│"

func split(t testing.TB, doc string) (prefix, suffix string) {
	t.Helper()
	prefix, suffix, ok := strings.Cut(doc, cursor)
	if !ok {
		t.Fatalf("document %q has no cursor", doc)
	}
	return prefix, suffix
}

func TestSituateMultiline(t *testing.T) {
	tests := []struct {
		name, doc, mode string
		want            bool
	}{
		{"mid-line", "x := foo(│)\n", "auto", false},
		{"end of a line opening a block", "func f() {│\n}\n", "auto", true},
		{"python block", "def f():│\n", "auto", true},
		{"blank line", "func f() {\n\t│\n}\n", "auto", true},
		{"end of a statement", "x := 1│\ny := 2\n", "auto", false},
		{"always overrides", "x := foo(│)\n", "always", true},
		{"never overrides", "func f() {│\n}\n", "never", false},
		{"trailing spaces after the cursor", "if x {│  \n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s := split(t, tt.doc)
			if got := situate(p, s, tt.mode).multiline; got != tt.want {
				t.Errorf("multiline = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPostprocess(t *testing.T) {
	tests := []struct {
		name, doc, raw, want string
		mode                 string
	}{
		// Single line.
		{name: "single line stops at the line break", doc: "x := │\n", raw: "compute()\nmore()", want: "compute()"},
		{name: "single line starting with a break is empty", doc: "x := 1│\n", raw: "\n\ty := 2", want: ""},
		{name: "trailing spaces trimmed at the end of a line", doc: "x := │\n", raw: "1   ", want: "1"},

		// What already stands after the cursor.
		{name: "closer already in the suffix", doc: "foo(│)\n", raw: "a, b)", want: "a, b"},
		{name: "closer and more already in the suffix", doc: "foo(│)\n", raw: "a, b) + 1", want: "a, b"},
		{name: "quote and paren overlap", doc: "print(\"│\")\n", raw: "hi\")", want: "hi"},
		{name: "semicolon overlap", doc: "x = │;\n", raw: "1;", want: "1"},
		{name: "whole rest of line repeated", doc: "│bar()\n", raw: "foo bar()", want: "foo "},
		{name: "identifier not stripped", doc: "f(│x)\n", raw: "return x", want: "return x"},
		{name: "closer of the prefix kept when not in the suffix", doc: "foo(a, │\n", raw: "b)", want: "b)"},

		// Brackets.
		{name: "closes what it opened", doc: "x := │\n", raw: "foo(a, b", want: "foo(a, b)"},
		{name: "closes nested, innermost first", doc: "x := │\n", raw: "f(g[1", want: "f(g[1])"},
		{name: "closes before the suffix's closer", doc: "print(│)\n", raw: "len(x", want: "len(x)"},
		{name: "a block it opens at the end stays open", doc: "x := │\n", raw: "func() {", want: "func() {"},
		{name: "brackets in strings ignored", doc: "x := │\n", raw: `f("(")`, want: `f("(")`},
		{name: "mismatched brackets left alone", doc: "x := │\n", raw: "f(]", want: "f(]"},
		{name: "multi-line closer on its own line", doc: "func f() {\n\t│\n}\n", raw: "if x {\n\t\ty()\n}", want: "if x {\n\t\ty()\n\t}"},

		// Blocks by indentation.
		{name: "block of an opener ends with its closer", doc: "func f() {│\n\nfunc g() {}\n",
			raw: "\n\treturn 1\n}\n\nfunc h() {", want: "\n\treturn 1\n}"},
		{name: "closer of an opener dropped when it is the next line", doc: "func f() {│\n}\n",
			raw: "\n\treturn 1\n}", want: "\n\treturn 1"},
		{name: "blank line in a block ends at the dedent", doc: "func f() {\n\t│\n}\n",
			raw: "a()\n\tb()\n}\nfunc g() {}", want: "a()\n\tb()"},
		{name: "python block ends at the dedent", doc: "def f():│\n",
			raw: "\n    return 1\n\ndef g():\n    pass", want: "\n    return 1"},
		{name: "top level ends after one declaration", doc: "package main\n\n│\n",
			raw: "func a() {\n\treturn\n}\n\nfunc b() {}", want: "func a() {\n\treturn\n}"},
		{name: "stops at the line below the cursor", doc: "func f() {\n\t│\n\treturn x\n}\n",
			raw: "y := 1\n\treturn x\n}", want: "y := 1"},
		{name: "else keeps the closer line", doc: "\tif x {│\n", raw: "\n\t\ta()\n\t} else {\n\t\tb()", want: "\n\t\ta()\n\t} else {"},

		// Empty.
		{name: "whitespace only", doc: "x := │\n", raw: "   ", want: ""},
		{name: "empty", doc: "x := │\n", raw: "", want: ""},
		{name: "multi-line whitespace only", doc: "func f() {│\n", raw: "\n\t\n", want: ""},

		// Line endings.
		{name: "CRLF document", doc: "a := 1\r\nfunc f() {│\r\n\r\nfunc g() {}\r\n", raw: "\r\n\treturn\r\n}", want: "\r\n\treturn\r\n}"},
		{name: "invalid UTF-8 dropped", doc: "x := │\n", raw: "a\xffb", want: "ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s := split(t, tt.doc)
			if got := postprocess(tt.raw, situate(p, s, tt.mode)); got != tt.want {
				t.Errorf("postprocess(%q)\n got %q\nwant %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestSituationComplete(t *testing.T) {
	tests := []struct {
		name, doc, buf string
		want           bool
	}{
		{"single line, any break", "x := │\n", "abc\n", true},
		{"block still open", "func f() {│\n}\n", "\n\treturn 1\n", false},
		{"closer line of the block", "func f() {│\n\nfunc g() {}\n", "\n\treturn 1\n}\n", true},
		{"dedented line", "func f() {\n\t│\n}\n", "a()\n}\n", true},
		{"partial line is not decided", "func f() {\n\t│\n}\n", "a()\n}", false},
		{"the line below the cursor", "func f() {\n\t│\n\treturn x\n}\n", "y := 1\n\treturn x\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s := split(t, tt.doc)
			if got := situate(p, s, "").complete([]byte(tt.buf)); got != tt.want {
				t.Errorf("complete(%q) = %v, want %v", tt.buf, got, tt.want)
			}
		})
	}
}

func FuzzPostprocess(f *testing.F) {
	seeds := []struct{ raw, prefix, suffix string }{
		{"a, b)", "foo(", ")\n"},
		{"\n\treturn 1\n}\n\nfunc h() {", "func f() {", "\n}\n"},
		{"y := 1\n\treturn x\n}", "func f() {\n\t", "\n\treturn x\n}\n"},
		{"f(g[1", "x := ", "\n"},
		{"\r\n\treturn\r\n}", "func f() {", "\r\n}\r\n"},
		{`f("(")`, "", ""},
		{"é日本\n本", "\t", "本\n"},
	}
	for _, s := range seeds {
		for mode := range byte(3) {
			f.Add(s.raw, s.prefix, s.suffix, mode)
		}
	}
	f.Fuzz(func(t *testing.T, raw, prefix, suffix string, mode byte) {
		sit := situate(prefix, suffix, []string{"auto", "always", "never"}[mode%3])
		got := postprocess(raw, sit)
		if got != "" && strings.TrimSpace(got) == "" {
			t.Fatalf("whitespace-only output %q", got)
		}
		if utf8.ValidString(raw) && !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 output %q", got)
		}
		if !sit.multiline && strings.ContainsAny(got, "\r\n") {
			t.Fatalf("single-line output %q has a line break", got)
		}
		if sit.multiline && sit.nextLine != "" {
			lines := strings.Split(strings.ReplaceAll(got, "\r\n", "\n"), "\n")
			for _, line := range lines[1:] {
				if strings.TrimRight(line, " \t") == sit.nextLine {
					t.Fatalf("output %q repeats the line below the cursor %q", got, sit.nextLine)
				}
			}
		}
		if sit.crlf && strings.Contains(strings.ReplaceAll(got, "\r\n", ""), "\n") {
			t.Fatalf("output %q has a bare line break in a CRLF document", got)
		}
		if again := postprocess(raw, sit); again != got {
			t.Fatalf("not deterministic: %q then %q", got, again)
		}
	})
}
