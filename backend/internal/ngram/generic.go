package ngram

import (
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// syntax is what the generic tokenizer needs to know about a language.
type syntax struct {
	lineComments  []string    // prefixes of comments that run to the end of the line
	blockComments [][2]string // opening and closing delimiters of block comments
	quotes        string      // characters that open a string literal
	charQuote     bool        // ' opens a short character literal, not a string
	tripleQuotes  bool        // """ and ''' open strings that span lines (Python)
	rawBacktick   bool        // `...` has no escapes and spans lines
}

var (
	cLike    = &syntax{lineComments: []string{"//"}, blockComments: [][2]string{{"/*", "*/"}}, quotes: `"'`, charQuote: true}
	jsLike   = &syntax{lineComments: []string{"//"}, blockComments: [][2]string{{"/*", "*/"}}, quotes: "\"'`", rawBacktick: true}
	hashLike = &syntax{lineComments: []string{"#"}, quotes: `"'`}
	python   = &syntax{lineComments: []string{"#"}, quotes: `"'`, tripleQuotes: true}
	dashLike = &syntax{lineComments: []string{"--"}, blockComments: [][2]string{{"/*", "*/"}}, quotes: `"'`}
	lua      = &syntax{lineComments: []string{"--"}, blockComments: [][2]string{{"--[[", "]]"}}, quotes: `"'`}
	haskell  = &syntax{lineComments: []string{"--"}, blockComments: [][2]string{{"{-", "-}"}}, quotes: `"`}
	markup   = &syntax{blockComments: [][2]string{{"<!--", "-->"}}, quotes: `"'`}
	lispLike = &syntax{lineComments: []string{";"}, quotes: `"`}
	asm      = &syntax{lineComments: []string{"//", "#", ";"}, blockComments: [][2]string{{"/*", "*/"}}, quotes: `"'`, charQuote: true}
	// unknownSyntax is used for languages not listed: C-like comments and
	// both common string quotes.
	unknownSyntax = &syntax{lineComments: []string{"//", "#"}, blockComments: [][2]string{{"/*", "*/"}}, quotes: `"'`}
)

// languages maps LSP language identifiers to their syntax.
var languages = map[string]*syntax{
	"c": cLike, "cpp": cLike, "objective-c": cLike, "objective-cpp": cLike, "java": cLike,
	"csharp": cLike, "rust": cLike, "kotlin": cLike, "scala": cLike, "swift": cLike,
	"proto": cLike, "proto3": cLike, "zig": cLike, "d": cLike, "groovy": cLike, "css": cLike,
	"scss": cLike, "less": cLike, "json": cLike, "jsonc": cLike, "dart": jsLike,
	"javascript": jsLike, "typescript": jsLike, "javascriptreact": jsLike,
	"typescriptreact": jsLike, "vue": jsLike, "svelte": jsLike, "go": jsLike, "php": jsLike,
	"python": python, "ruby": hashLike, "shellscript": hashLike, "perl": hashLike, "r": hashLike,
	"yaml": hashLike, "toml": hashLike, "makefile": hashLike, "dockerfile": hashLike,
	"cmake": hashLike, "elixir": hashLike, "powershell": hashLike, "julia": hashLike,
	"nix": hashLike, "ini": hashLike, "sql": dashLike, "lua": lua, "haskell": haskell,
	"html": markup, "xml": markup, "clojure": lispLike, "lisp": lispLike, "scheme": lispLike,
	"asm": asm,
}

// extLanguages maps file extensions to LSP language identifiers, for the
// corpus. A file whose extension is not here is not trained on.
var extLanguages = map[string]string{
	".go": "go", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp",
	".hh": "cpp", ".m": "objective-c", ".mm": "objective-cpp", ".java": "java", ".cs": "csharp",
	".rs": "rust", ".kt": "kotlin", ".kts": "kotlin", ".scala": "scala", ".swift": "swift",
	".proto": "proto", ".zig": "zig", ".groovy": "groovy", ".css": "css", ".scss": "scss",
	".less": "less", ".json": "json", ".dart": "dart", ".js": "javascript", ".mjs": "javascript",
	".cjs": "javascript", ".jsx": "javascriptreact", ".ts": "typescript", ".tsx": "typescriptreact",
	".vue": "vue", ".svelte": "svelte", ".php": "php", ".py": "python", ".rb": "ruby",
	".sh": "shellscript", ".bash": "shellscript", ".zsh": "shellscript", ".rc": "shellscript",
	".pl": "perl", ".pm": "perl", ".r": "r", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml",
	".mk": "makefile", ".cmake": "cmake", ".ex": "elixir", ".exs": "elixir", ".ps1": "powershell",
	".jl": "julia", ".nix": "nix", ".ini": "ini", ".sql": "sql", ".lua": "lua", ".hs": "haskell",
	".html": "html", ".htm": "html", ".xml": "xml", ".clj": "clojure", ".lisp": "lisp",
	".el": "lisp", ".scm": "scheme", ".s": "asm", ".asm": "asm",
}

// familyGo is the family of Go, which go/scanner tokenizes.
const familyGo = 1

// languageAliases maps language identifiers to the one whose family they
// share.
var languageAliases = map[string]string{
	"javascriptreact": "javascript", "typescriptreact": "typescript", "jsonc": "json",
	"proto3": "proto", "objective-cpp": "objective-c", "sh": "shellscript", "bash": "shellscript",
}

// families numbers the languages the generic tokenizer knows, in a fixed
// order; a language not listed shares the last family.
var families = func() map[string]byte {
	var ids []string
	for id := range languages {
		if _, alias := languageAliases[id]; !alias && id != "go" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	f := map[string]byte{"go": familyGo}
	for i, id := range ids {
		f[id] = byte(familyGo + 1 + i)
	}
	return f
}()

// family returns the vocabulary family of an LSP language identifier.
func family(language string) byte {
	language = strings.ToLower(language)
	if a, ok := languageAliases[language]; ok {
		language = a
	}
	if f, ok := families[language]; ok {
		return f
	}
	return byte(familyGo + 1 + len(families))
}

// fileLanguage returns the language of a corpus file from its name, or "".
func fileLanguage(name string) string {
	switch base := filepath.Base(name); base {
	case "Makefile", "makefile", "GNUmakefile":
		return "makefile"
	case "Dockerfile":
		return "dockerfile"
	}
	return extLanguages[strings.ToLower(filepath.Ext(name))]
}

// syntaxFor returns the syntax of an LSP language identifier.
func syntaxFor(language string) *syntax {
	if s, ok := languages[strings.ToLower(language)]; ok {
		return s
	}
	return unknownSyntax
}

// operators are the multi-character punctuation tokens the generic
// tokenizer keeps whole, longest first.
var operators = []string{
	">>>=", "<<=", ">>=", "===", "!==", "**=", "...", "//=", "&&=", "||=", "??=", "<=>", "&^=", ">>>",
	"::", "->", "=>", "==", "!=", "<=", ">=", "&&", "||", "++", "--", "+=", "-=", "*=", "/=",
	"%=", "&=", "|=", "^=", "<<", ">>", ":=", "**", "??", "?.", "..", "<-", "&^",
}

// tokenizeGeneric appends the tokens of src, in a language with syntax syn,
// to dst: identifiers, numbers, strings, comments and punctuation. Newlines
// and indentation are left to layout.
func tokenizeGeneric(dst []token, src []byte, syn *syntax) []token {
	i := 0
	for i < len(src) {
		c := src[i]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v' {
			i++
			continue
		}
		if end, open, ok := scanComment(src, i, syn); ok {
			dst = append(dst, token{text: string(src[i:end]), kind: kindComment, start: i, end: end, open: open})
			i = end
			continue
		}
		t := token{start: i}
		switch {
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && isDigit(src[i+1]):
			t.kind, t.end = kindInt, scanNumber(src, i)
			if strings.ContainsAny(string(src[i:t.end]), ".eE") && !hasHexPrefix(src[i:t.end]) {
				t.kind = kindFloat
			}
		case strings.IndexByte(syn.quotes, c) >= 0 && c < utf8.RuneSelf:
			t.kind = kindString
			t.end, t.open = scanString(src, i, syn)
			if t.end < 0 { // an apostrophe, not a literal
				t.kind, t.end, t.open = kindOp, i+1, false
			} else if c == '\'' && syn.charQuote {
				t.kind = kindChar
			}
		default:
			r, n := utf8.DecodeRune(src[i:])
			if isIdentRune(r, true) {
				t.kind = kindIdent
				j := i + n
				for j < len(src) {
					r, n := utf8.DecodeRune(src[j:])
					if !isIdentRune(r, false) {
						break
					}
					j += n
				}
				t.end = j
				break
			}
			t.kind, t.end = kindOp, i+n
			for _, op := range operators {
				if hasPrefixAt(src, i, op) {
					t.end = i + len(op)
					break
				}
			}
		}
		t.text = string(src[t.start:t.end])
		dst = append(dst, t)
		i = t.end
	}
	return dst
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentRune(r rune, first bool) bool {
	if r == '_' || r == '$' || unicode.IsLetter(r) {
		return true
	}
	return !first && unicode.IsDigit(r)
}

func hasPrefixAt(src []byte, i int, p string) bool {
	return len(src)-i >= len(p) && string(src[i:i+len(p)]) == p
}

func hasHexPrefix(b []byte) bool {
	return len(b) > 1 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X')
}

// scanComment reports whether a comment starts at i and where it ends.
func scanComment(src []byte, i int, syn *syntax) (end int, open, ok bool) {
	for _, bc := range syn.blockComments {
		if hasPrefixAt(src, i, bc[0]) {
			for j := i + len(bc[0]); j < len(src); j++ {
				if hasPrefixAt(src, j, bc[1]) {
					return j + len(bc[1]), false, true
				}
			}
			return len(src), true, true
		}
	}
	for _, lc := range syn.lineComments {
		if hasPrefixAt(src, i, lc) {
			for j := i; j < len(src); j++ {
				if src[j] == '\n' {
					return j, false, true
				}
			}
			return len(src), true, true
		}
	}
	return 0, false, false
}

// scanNumber returns the end of the number starting at i: digits, letters,
// underscores, a dot before a digit, and a sign right after an exponent.
func scanNumber(src []byte, i int) int {
	hex := hasHexPrefix(src[i:])
	j := i
	for j < len(src) {
		c := src[j]
		switch {
		case isDigit(c) || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j++
		case c == '.' && j+1 < len(src) && isDigit(src[j+1]):
			j++
		case (c == '+' || c == '-') && j > i && !hex && (src[j-1] == 'e' || src[j-1] == 'E'):
			j++
		default:
			return j
		}
	}
	return j
}

// scanString returns the end of the string literal opening at i, whether it
// runs unterminated to the end of input, or end -1 when the quote at i does
// not open a literal (an apostrophe in a language with character literals).
func scanString(src []byte, i int, syn *syntax) (end int, open bool) {
	q := src[i]
	if syn.tripleQuotes && (q == '"' || q == '\'') && hasPrefixAt(src, i, string([]byte{q, q, q})) {
		delim := string([]byte{q, q, q})
		for j := i + 3; j < len(src); j++ {
			if src[j] == '\\' {
				j++
				continue
			}
			if hasPrefixAt(src, j, delim) {
				return j + 3, false
			}
		}
		return len(src), true
	}
	raw := q == '`' && syn.rawBacktick
	limit := len(src)
	if q == '\'' && syn.charQuote {
		// A character literal is one character or a short escape; anything
		// else (a Rust lifetime, an apostrophe) is punctuation.
		if i+1 < len(src) && src[i+1] != '\\' {
			_, n := utf8.DecodeRune(src[i+1:])
			if j := i + 1 + n; j < len(src) && src[j] == '\'' && src[i+1] != '\n' {
				return j + 1, false
			}
			if i+1+n < len(src) {
				return -1, false
			}
		}
		limit = min(len(src), i+12)
	}
	for j := i + 1; j < limit; j++ {
		switch c := src[j]; {
		case c == '\\' && !raw:
			j++
		case c == q:
			return j + 1, false
		case c == '\n' && !raw:
			if q == '\'' && syn.charQuote {
				return -1, false
			}
			return j, false // unterminated at the end of the line
		}
	}
	if q == '\'' && syn.charQuote && limit < len(src) {
		return -1, false
	}
	return len(src), true
}

// tokenize appends the tokens of src in language (an LSP language
// identifier) to dst, comments included, layout not filled.
func tokenize(dst []token, src []byte, language string) []token {
	if language == "go" {
		return tokenizeGo(dst, src)
	}
	return tokenizeGeneric(dst, src, syntaxFor(language))
}
