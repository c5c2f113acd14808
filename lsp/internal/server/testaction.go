package server

import (
	"context"
	"io"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/complete"
	"github.com/codingplan/codingplan/lsp/internal/document"
)

// "Write tests": the tests go in the language's test file (testFileFor), created or extended
// through one workspace edit.

// maxTestFileBytes bounds what is read of an existing test file the editor does not have open.
const maxTestFileBytes = 4 << 20

// testTarget is the test file of a run, or where the tests go without one.
type testTarget struct {
	uri     string // "" when the tests go after the selection
	path    string // slash-separated file path
	text    string // its current text; "" for a new file
	exists  bool
	version *int32 // its version when the editor has it open
	pkg     string // Go: the package the tests belong to
}

// testTarget finds doc's test file and what it holds now: the editor's text if it has the file
// open, else the file on disk.
func (s *Server) testTarget(doc *document.Doc) *testTarget {
	u, err := url.Parse(doc.URI)
	if err != nil || u.Scheme != "file" {
		return &testTarget{}
	}
	p, ok := testFileFor(u.Path)
	if !ok {
		return &testTarget{}
	}
	t := &testTarget{uri: (&url.URL{Scheme: "file", Path: p}).String(), path: p}
	if doc.LanguageID == "go" || strings.HasSuffix(u.Path, ".go") {
		if m := goPackage.FindStringSubmatch(doc.Text); m != nil {
			t.pkg = m[1]
		}
	}
	if open := s.docs.Get(t.uri); open != nil {
		v := open.Version
		t.text, t.exists, t.version = open.Text, true, &v
		return t
	}
	if f, err := os.Open(p); err == nil {
		b, err := io.ReadAll(io.LimitReader(f, maxTestFileBytes+1))
		f.Close()
		if err != nil || len(b) > maxTestFileBytes {
			return &testTarget{} // unreadable or too large to extend safely: after the selection
		}
		t.text, t.exists = string(b), true
	}
	return t
}

// instruction is what the model is told about where its tests go.
func (t *testTarget) instruction(doc *document.Doc, relPath string) string {
	if t.uri == "" {
		return ""
	}
	name := path.Base(t.path)
	var b strings.Builder
	b.WriteString(" The code under test is in " + path.Base(relPath) + ".")
	switch {
	case !t.exists || strings.TrimSpace(t.text) == "":
		b.WriteString(" The tests go in a new file, " + name + ", beside it")
		if t.pkg != "" {
			b.WriteString(", in package " + t.pkg + ": start it with `package " + t.pkg + "` and the imports the tests need")
		}
		b.WriteString(".")
	default:
		b.WriteString(" The tests are appended to the existing file " + name +
			": reply with the new tests only, without a package clause or imports")
		if imports := goImports(t.text); t.pkg != "" && len(imports) > 0 {
			b.WriteString("; use only what the file imports already: " + strings.Join(imports, ", "))
		}
		b.WriteString(".")
	}
	return b.String()
}

// testsEdit turns the model's answer into the edit that creates or extends the test file, or,
// without one (or a client that cannot create it), inserts the tests after the selection.
func (s *Server) testsEdit(r actionRun, t *testTarget, out string) ([]fileEdit, string) {
	caps := s.editCaps()
	if t.uri == "" {
		return s.selectionEdit(r, out)
	}
	if !t.exists && !caps.create {
		edit, note := s.selectionEdit(r, out)
		if edit != nil {
			note = "your editor cannot create files through LSP (workspace edit resource operations), so the tests were put " +
				"after the selection; move them to " + path.Base(t.path) + "."
		}
		return edit, note
	}
	nl := complete.LineEnding(r.doc.Text)
	if t.exists {
		nl = complete.LineEnding(t.text)
	}
	tests := complete.CleanOutput(out, "", nl)
	var missing []string
	if t.exists && t.pkg != "" {
		tests, missing = dropGoHeader(tests, t.text)
	}
	if strings.TrimSpace(tests) == "" {
		s.showMessage(context.Background(), protocol.MessageTypeWarning, r.spec.title+": the model returned nothing to apply.")
		return nil, "no result"
	}
	tests = strings.TrimRight(tests, "\r\n") + nl
	switch {
	case strings.TrimSpace(t.text) == "":
	case strings.HasSuffix(t.text, "\n"):
		tests = nl + tests
	default:
		tests = nl + nl + tests
	}
	_, enc, _ := s.snapshot()
	end := document.New(t.uri, r.doc.LanguageID, 0, t.text).RangeOf(enc, len(t.text), len(t.text))
	verb := "added to "
	if !t.exists {
		verb = "written to the new file "
	}
	note := "tests " + verb + path.Base(t.path) + "."
	if len(missing) > 0 {
		note += " They need imports the file lacks: " + strings.Join(missing, ", ") + "."
	}
	return []fileEdit{{uri: t.uri, version: t.version, create: !t.exists && caps.create,
		edit: protocol.TextEdit{Range: end, NewText: tests}}}, note
}

// A Go file's import declarations, and the paths in them.
var (
	goImportDecl = regexp.MustCompile(`(?ms)^import[ \t]*\(.*?^\)|^import[ \t]+[^\n]+`)
	goImportPath = regexp.MustCompile(`"[^"\n]+"`)
)

// goImports lists the import paths of a Go file's import declarations.
func goImports(text string) []string {
	var out []string
	for _, decl := range goImportDecl.FindAllString(text, -1) {
		out = append(out, goImportPath.FindAllString(decl, -1)...)
	}
	return out
}

// dropGoHeader removes the package clause and the import declarations that start tests
// appended to an existing Go file, and returns the imports among them the file lacks.
func dropGoHeader(tests, file string) (string, []string) {
	loc := goPackage.FindStringIndex(tests)
	if loc == nil || strings.TrimSpace(tests[:loc[0]]) != "" {
		return tests, nil
	}
	rest := strings.TrimLeft(tests[loc[1]:], " \t")
	rest = strings.TrimLeft(strings.TrimPrefix(rest, strings.SplitAfterN(rest, "\n", 2)[0]), "\r\n")
	have := goImports(file)
	var missing []string
	for {
		d := goImportDecl.FindStringIndex(rest)
		if d == nil || d[0] != 0 {
			break
		}
		for _, imp := range goImportPath.FindAllString(rest[:d[1]], -1) {
			if !slices.Contains(have, imp) {
				missing = append(missing, imp)
			}
		}
		rest = strings.TrimLeft(rest[d[1]:], "\r\n")
	}
	return rest, missing
}
