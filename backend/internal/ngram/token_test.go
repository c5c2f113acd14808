package ngram

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// show renders a laid-out token as its layout and text: "x" glued, " x"
// after spaces, "\n+1 x" on a new line one level deeper, "\n\n+0 x" after a
// blank line.
func show(t token) string {
	switch t.space {
	case spaceOne:
		return " " + t.text
	case spaceLine:
		return fmt.Sprintf("\n%+d %s", t.indent, t.text)
	case spaceBlank:
		return fmt.Sprintf("\n\n%+d %s", t.indent, t.text)
	}
	return t.text
}

func showAll(toks []token) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = show(t)
	}
	return out
}

func diffTokens(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("tokens:\n got %q\nwant %q", got, want)
	}
}

func TestTokenizeGo(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"empty", "", []string{}},
		{"package", "package p\n", []string{"package", " p"}},
		{
			"block and blank line",
			"package p\n\n// f does things.\nfunc f() {\n\treturn\n}\n",
			[]string{"package", " p", "\n\n+0 func", " f", "(", ")", " {", "\n+1 return", "\n-1 }"},
		},
		{
			"comments are skipped, not blank lines",
			"x := 1 // one\n/* two */ y := 2\n",
			[]string{"x", " :=", " 1", "\n+0 y", " :=", " 2"},
		},
		{
			"literals and operators",
			"s := `a\nb` + \"c\\\"\" + 'd'\nv[i]++\n",
			[]string{"s", " :=", " `a\nb`", " +", ` "c\""`, " +", " 'd'", "\n+0 v", "[", "i", "]", "++"},
		},
		{
			"explicit semicolons kept, inserted ones dropped",
			"for i := 0; i < n; i++ {\n}\n",
			[]string{"for", " i", " :=", " 0", ";", " i", " <", " n", ";", " i", "++", " {", "\n+0 }"},
		},
		{
			"dedent by two",
			"func f() {\n\tif x {\n\t\ty()\n}\n",
			[]string{"func", " f", "(", ")", " {", "\n+1 if", " x", " {", "\n+1 y", "(", ")", "\n-2 }"},
		},
		{
			"numbers",
			"a := 0x1F + 1.5e-3 + 2i\n",
			[]string{"a", " :=", " 0x1F", " +", " 1.5e-3", " +", " 2i"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := []byte(tt.src)
			got := showAll(layout(tokenizeGo(nil, src), src))
			diffTokens(t, got, tt.want)
		})
	}
}

func TestTokenizeGoKindsAndOffsets(t *testing.T) {
	src := []byte("x := \"s\" // c\ny")
	toks := tokenizeGo(nil, src)
	type tk struct {
		text       string
		kind       kind
		start, end int
	}
	var got []tk
	for _, t := range toks {
		got = append(got, tk{t.text, t.kind, t.start, t.end})
	}
	want := []tk{
		{"x", kindIdent, 0, 1}, {":=", kindOp, 2, 4}, {`"s"`, kindString, 5, 8},
		{"// c", kindComment, 9, 13}, {"y", kindIdent, 14, 15},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestTokenizeOpenAtEnd(t *testing.T) {
	tests := []struct {
		lang, src string
		kind      kind
		open      bool
	}{
		{"go", "x // comment", kindComment, true},
		{"go", "x // comment\n", kindComment, false},
		{"go", "x /* comment", kindComment, true},
		{"go", "x /* c */", kindComment, false},
		{"go", `x("abc`, kindString, true},
		{"go", `x("abc"`, kindString, false},
		{"go", "x(`abc", kindString, true},
		{"python", "x # comment", kindComment, true},
		{"python", `x = "abc`, kindString, true},
		{"python", `x = """abc`, kindString, true},
		{"javascript", "x /* c", kindComment, true},
		{"c", "x = 'a'", kindChar, false},
	}
	for _, tt := range tests {
		t.Run(tt.lang+" "+tt.src, func(t *testing.T) {
			toks := tokenize(nil, []byte(tt.src), tt.lang)
			last := toks[len(toks)-1]
			if last.kind != tt.kind || last.open != tt.open {
				t.Errorf("last token %q: kind %v open %v, want kind %v open %v", last.text, last.kind, last.open, tt.kind, tt.open)
			}
		})
	}
}

func TestTokenizeGeneric(t *testing.T) {
	tests := []struct {
		name, lang, src string
		want            []string
	}{
		{
			"python indentation",
			"python",
			"def f(x):\n    if x:\n        return x ** 2\n\n    return None  # none\n",
			[]string{"def", " f", "(", "x", ")", ":", "\n+1 if", " x", ":", "\n+1 return", " x", " **", " 2", "\n\n-1 return", " None"},
		},
		{
			"python strings",
			"python",
			"s = '''a\nb''' + \"c\\\"d\" + 'e'\n",
			[]string{"s", " =", " '''a\nb'''", " +", ` "c\"d"`, " +", " 'e'"},
		},
		{
			"javascript",
			"javascript",
			"const f = (a) => {\n  return a?.b ?? `t${a}`; // c\n};\n",
			[]string{"const", " f", " =", " (", "a", ")", " =>", " {", "\n+1 return", " a", "?.", "b", " ??", " `t${a}`", ";", "\n-1 }", ";"},
		},
		{
			"c with char literal and block comment",
			"c",
			"int main(void) {\n\t/* x */ char c = 'a';\n\treturn 0x1f >= 1.5e+3;\n}\n",
			[]string{"int", " main", "(", "void", ")", " {", "\n+1 char", " c", " =", " 'a'", ";", "\n+0 return", " 0x1f", " >=", " 1.5e+3", ";", "\n-1 }"},
		},
		{
			"rust lifetime is not a char literal",
			"rust",
			"fn f<'a>(x: &'a str) {}\n",
			[]string{"fn", " f", "<", "'", "a", ">", "(", "x", ":", " &", "'", "a", " str", ")", " {", "}"},
		},
		{
			"unicode identifiers and ranges",
			"unknown-lang",
			"ñame = 1..10 # c\n",
			[]string{"ñame", " =", " 1", "..", "10"},
		},
		{
			"lua comments",
			"lua",
			"local x = 1 -- c\n--[[ block\n]] return x\n",
			[]string{"local", " x", " =", " 1", "\n+0 return", " x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := []byte(tt.src)
			got := showAll(layout(tokenize(nil, src, tt.lang), src))
			diffTokens(t, got, tt.want)
		})
	}
}

func TestIndentUnit(t *testing.T) {
	tests := []struct {
		src  string
		want int
	}{
		{"a\n  b\n    c\n", 2},
		{"a\n    b\n        c\n", 4},
		{"a\n\tb\n", 4},
		{"", 4},
	}
	for _, tt := range tests {
		if got := indentUnit([]byte(tt.src)); got != tt.want {
			t.Errorf("indentUnit(%q) = %d, want %d", tt.src, got, tt.want)
		}
	}
}

func TestSpaceCodeRoundTrip(t *testing.T) {
	for _, sp := range []space{spaceNone, spaceOne, spaceLine, spaceBlank} {
		for indent := int8(-maxIndent); indent <= maxIndent; indent++ {
			if (sp == spaceNone || sp == spaceOne) && indent != 0 {
				continue
			}
			c := spaceCode(sp, indent)
			gotSp, gotIndent := decodeSpace(c)
			if gotSp != sp || gotIndent != indent || c == unkCode {
				t.Errorf("spaceCode(%d, %d) = %d, decodes to %d, %d", sp, indent, c, gotSp, gotIndent)
			}
		}
	}
}

// FuzzTokenizeGeneric checks that the generic tokenizer never panics, keeps
// tokens in order inside the input with their source text, and leaves
// nothing but whitespace between them.
func FuzzTokenizeGeneric(f *testing.F) {
	for _, s := range []string{
		"def f(x):\n    return x", "a = 'b' + \"c\" # d", "/* x */ y // z\n", `"""doc"""`, "1.5e+3 0x1f ..",
		"'", "\"\\", "`", "--[[", "ñ", "\xff\xfe", "a\r\nb", "{-", "<!-- x",
	} {
		f.Add(s, "python")
		f.Add(s, "c")
		f.Add(s, "lua")
	}
	f.Fuzz(func(t *testing.T, src, lang string) {
		b := []byte(src)
		toks := tokenize(nil, b, lang)
		pos := 0
		for _, tk := range toks {
			if tk.start < pos || tk.end <= tk.start || tk.end > len(b) {
				t.Fatalf("token %q at [%d,%d) after %d in %d bytes", tk.text, tk.start, tk.end, pos, len(b))
			}
			if tk.text != string(b[tk.start:tk.end]) {
				t.Fatalf("token text %q, source %q", tk.text, b[tk.start:tk.end])
			}
			if gap := strings.Trim(string(b[pos:tk.start]), " \t\r\n\f\v"); gap != "" {
				t.Fatalf("bytes %q skipped between tokens", gap)
			}
			pos = tk.end
		}
		if gap := strings.Trim(string(b[pos:]), " \t\r\n\f\v"); gap != "" {
			t.Fatalf("bytes %q skipped at the end", gap)
		}
		for _, tk := range layout(toks, b) {
			if tk.kind == kindComment || tk.indent < -maxIndent || tk.indent > maxIndent {
				t.Fatalf("layout left %+v", tk)
			}
		}
	})
}
