package ngram

import (
	"bytes"
	"go/scanner"
	gotoken "go/token"
	"strconv"
	"strings"
)

// scope is what a Go completion may name, read leniently from what the
// request shows: the file's top-level names and imports (prefix and
// suffix), the top-level names of the other open files (snippets), and the
// identifiers of the declaration the cursor is in (its receiver,
// parameters, results and locals, and whatever it already uses). It reads
// gofmt's layout: a declaration starts a line at column 0. It is built for
// one completion and dropped with it.
type scope struct {
	local   map[string]bool // identifiers of the current declaration
	top     map[string]bool // top-level names of the file and the snippets
	imports map[string]bool // names the file's imports give their packages
	prompt  [][]byte        // prefix, suffix and snippets, to find pkg.Name in
}

const (
	// maxScopeBytes bounds how much of the prefix, the suffix and the
	// snippets (each) the scope reads line by line for declarations.
	maxScopeBytes = 1 << 20
	// maxLocalBytes bounds how much of the current declaration, before and
	// after the cursor, go/scanner reads for its identifiers.
	maxLocalBytes = 16 << 10
)

// goScope reads the scope of a Go completion.
func goScope(prefix, suffix []byte, snippets [][]byte) *scope {
	s := &scope{local: map[string]bool{}, top: map[string]bool{}, imports: map[string]bool{}}
	prefix = prefix[max(0, len(prefix)-maxScopeBytes):]
	suffix = suffix[:min(len(suffix), maxScopeBytes)]
	s.prompt = append(s.prompt, prefix, suffix)
	s.declarations(prefix, true)
	s.declarations(suffix, false)
	for _, sn := range snippets {
		sn = sn[:min(len(sn), maxScopeBytes)]
		s.prompt = append(s.prompt, sn)
		s.declarations(sn, false)
	}
	// The current declaration: from the last line that starts one, to the
	// cursor, and on to the end of the declaration in the suffix.
	start := lastDeclLine(prefix)
	s.identifiers(prefix[max(start, len(prefix)-maxLocalBytes):])
	end := bytes.Index(suffix, []byte("\n}"))
	if end < 0 {
		end = len(suffix)
	}
	s.identifiers(suffix[:min(end, maxLocalBytes)])
	return s
}

// declKeywords start a top-level declaration at column 0.
var declKeywords = []string{"func", "type", "var", "const", "import"}

// lastDeclLine returns the offset of the last line of src that starts a
// declaration at column 0, or 0.
func lastDeclLine(src []byte) int {
	for end := len(src); end > 0; {
		i := bytes.LastIndexByte(src[:end], '\n') + 1
		if declStart(src[i:]) != "" {
			return i
		}
		end = i - 1
	}
	return 0
}

// declStart returns the keyword that line starts a declaration with, or "".
func declStart(line []byte) string {
	for _, k := range declKeywords {
		if bytes.HasPrefix(line, []byte(k)) && len(line) > len(k) && (line[len(k)] == ' ' || line[len(k)] == '(') {
			return k
		}
	}
	return ""
}

// declarations adds the top-level names declared in src (and, with
// imports, the import names) by reading its lines.
func (s *scope) declarations(src []byte, imports bool) {
	group := "" // the keyword of the group declaration we are in
	for len(src) > 0 {
		var line []byte
		line, src, _ = bytes.Cut(src, []byte("\n"))
		line = bytes.TrimRight(line, " \t\r")
		if group != "" {
			switch {
			case len(line) > 0 && line[0] == ')':
				group = ""
			case len(line) > 1 && line[0] == '\t' && line[1] != '\t':
				s.declared(group, line[1:], imports)
			}
			continue
		}
		k := declStart(line)
		if k == "" {
			continue
		}
		rest := bytes.TrimLeft(line[len(k):], " ")
		if len(rest) > 0 && rest[0] == '(' && k != "func" {
			if !bytes.Contains(rest, []byte(")")) {
				group = k
			}
			continue
		}
		s.declared(k, rest, imports)
	}
}

// declared adds the names of one declaration (or one line of a group) of
// kind k, whose text after the keyword is rest.
func (s *scope) declared(k string, rest []byte, imports bool) {
	switch k {
	case "import":
		if imports {
			if name := importName(rest); name != "" {
				s.imports[name] = true
			}
		}
	case "func":
		if len(rest) > 0 && rest[0] != '(' { // a method's name is not in scope
			s.top[leadingIdent(rest)] = true
		}
	default:
		// var a, b = ...; const X ...; type T ...
		for {
			id := leadingIdent(rest)
			if id == "" {
				return
			}
			s.top[id] = true
			rest = bytes.TrimLeft(rest[len(id):], " ")
			if len(rest) == 0 || rest[0] != ',' {
				return
			}
			rest = bytes.TrimLeft(rest[1:], " ")
		}
	}
}

// importName returns the name an import spec (`"path"` or `name "path"`)
// gives its package, or "" for none (blank and dot imports, or a line that
// is no spec).
func importName(spec []byte) string {
	if id := leadingIdent(spec); id != "" {
		return id
	}
	if len(spec) > 0 && (spec[0] == '_' || spec[0] == '.') {
		return ""
	}
	q := spec
	if i := bytes.IndexAny(q[min(1, len(q)):], "\"`"); i >= 0 {
		q = q[:i+2]
	}
	path, err := strconv.Unquote(string(q))
	if err != nil {
		return ""
	}
	return packageName(path)
}

// packageName guesses the name of the package at an import path: its last
// element, without a major version element, a ".vN" suffix or a "go-"
// prefix.
func packageName(path string) string {
	elems := strings.Split(path, "/")
	name := elems[len(elems)-1]
	if len(elems) > 1 && len(name) > 1 && name[0] == 'v' && strings.Trim(name[1:], "0123456789") == "" {
		name = elems[len(elems)-2]
	}
	if i := strings.Index(name, ".v"); i > 0 {
		name = name[:i]
	}
	name = strings.TrimPrefix(name, "go-")
	return strings.ReplaceAll(name, "-", "_")
}

// leadingIdent returns the identifier b starts with, or "".
func leadingIdent(b []byte) string {
	n := 0
	for n < len(b) && (b[n] == '_' || b[n] >= 'a' && b[n] <= 'z' || b[n] >= 'A' && b[n] <= 'Z' ||
		n > 0 && b[n] >= '0' && b[n] <= '9' || b[n] >= 0x80) {
		n++
	}
	if n == 1 && b[0] == '_' {
		return ""
	}
	return string(b[:n])
}

// identifiers adds every identifier of src to the current declaration's,
// but for a selector's name (x.Name) and an imported package's name before
// a dot.
func (s *scope) identifiers(src []byte) {
	fset := gotoken.NewFileSet()
	var sc scanner.Scanner
	sc.Init(fset.AddFile("", fset.Base(), len(src)), src, func(gotoken.Position, string) {}, 0)
	prev, pending := gotoken.ILLEGAL, ""
	for {
		_, tok, lit := sc.Scan()
		if pending != "" && (tok != gotoken.PERIOD || !s.imports[pending]) {
			s.local[pending] = true
		}
		pending = ""
		if tok == gotoken.EOF {
			return
		}
		if tok == gotoken.IDENT && prev != gotoken.PERIOD {
			pending = lit
		}
		prev = tok
	}
}

// has reports whether name is in scope: the current declaration's, a
// top-level name, an imported package or a predeclared identifier.
func (s *scope) has(name string) bool {
	return s.local[name] || s.top[name] || s.imports[name] || predeclared[name]
}

// written reports whether the prompt writes pkg.name somewhere.
func (s *scope) written(pkg, name string) bool {
	want := pkg + "." + name
	for _, b := range s.prompt {
		for off := 0; ; {
			i := bytes.Index(b[off:], []byte(want))
			if i < 0 {
				break
			}
			i += off
			before := i == 0 || !isIdentByte(b[i-1])
			end := i + len(want)
			if before && (end == len(b) || !isIdentByte(b[end])) {
				return true
			}
			off = i + 1
		}
	}
	return false
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// predeclared are Go's predeclared identifiers, in scope everywhere.
var predeclared = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`any bool byte comparable complex64 complex128 error float32 float64
		int int8 int16 int32 int64 rune string uint uint8 uint16 uint32 uint64 uintptr
		true false iota nil _
		append cap clear close complex copy delete imag len make max min new panic print println real recover`) {
		predeclared[n] = true
	}
}
