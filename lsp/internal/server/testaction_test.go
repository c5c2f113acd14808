package server

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

func TestTestFileFor(t *testing.T) {
	tests := []struct {
		src, want string // want "": the tests go in the file itself
	}{
		{"/w/calc/add.go", "/w/calc/add_test.go"},
		{"/w/calc/add_test.go", ""},
		{"/w/pkg/util.py", "/w/pkg/test_util.py"},
		{"/w/pkg/test_util.py", ""},
		{"/w/pkg/util_test.py", ""},
		{"/w/src/sum.ts", "/w/src/sum.test.ts"},
		{"/w/src/Button.tsx", "/w/src/Button.test.tsx"},
		{"/w/src/sum.js", "/w/src/sum.test.js"},
		{"/w/src/sum.mjs", "/w/src/sum.test.mjs"},
		{"/w/src/sum.test.ts", ""},
		{"/w/lib/calc.rb", "/w/lib/calc_test.rb"},
		{"/w/src/calc.c", "/w/src/calc_test.c"},
		{"/w/src/calc.cc", "/w/src/calc_test.cc"},
		{"/w/src/calc.cpp", "/w/src/calc_test.cpp"},
		{"/w/src/main/java/com/x/Calc.java", "/w/src/test/java/com/x/CalcTest.java"},
		{"/w/Calc.java", "/w/CalcTest.java"},
		{"/w/src/main/kotlin/x/Calc.kt", "/w/src/test/kotlin/x/CalcTest.kt"},
		{"/w/src/Calc.php", "/w/src/CalcTest.php"},
		{"/w/Sources/Calc.swift", "/w/Sources/CalcTest.swift"},
		{"/w/Calc.cs", "/w/CalcTests.cs"},
		{"/w/lib/app/calc.ex", "/w/test/app/calc_test.exs"},
		{"/w/src/lib.rs", ""}, // Rust: #[cfg(test)] beside the code
		{"/w/README", ""},
		{"/w/.go", ""},
	}
	for _, tt := range tests {
		got, ok := testFileFor(tt.src)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("testFileFor(%q) = %q, %v; want %q", tt.src, got, ok, tt.want)
		}
	}
}

func TestGoTestHelpers(t *testing.T) {
	src := "package a\n\nimport (\n\t\"testing\"\n\tcmp \"github.com/google/go-cmp/cmp\"\n)\n\nimport \"strings\"\n\nfunc TestX(t *testing.T) {}\n"
	if got, want := strings.Join(goImports(src), " "), `"testing" "github.com/google/go-cmp/cmp" "strings"`; got != want {
		t.Errorf("goImports = %s, want %s", got, want)
	}
	tests := []struct{ in, want, missing string }{
		{"package a\n\nfunc TestY(t *testing.T) {}\n", "func TestY(t *testing.T) {}\n", ""},
		{"package a\n\nimport (\n\t\"testing\"\n\t\"errors\"\n)\n\nimport \"strings\"\n\nfunc TestY(t *testing.T) {}\n",
			"func TestY(t *testing.T) {}\n", `"errors"`},
		{"func TestY(t *testing.T) {}\n", "func TestY(t *testing.T) {}\n", ""},
		{"// x\nfunc TestY() {}\npackage b\n", "// x\nfunc TestY() {}\npackage b\n", ""},
	}
	for _, tt := range tests {
		got, missing := dropGoHeader(tt.in, src)
		if got != tt.want || strings.Join(missing, " ") != tt.missing {
			t.Errorf("dropGoHeader(%q) = %q, %q; want %q, %q", tt.in, got, missing, tt.want, tt.missing)
		}
	}
}

// vscodeCaps are the capabilities of VS Code's language client that code actions use.
var vscodeCaps = map[string]any{
	"general": map[string]any{"positionEncodings": []string{"utf-16"}},
	"workspace": map[string]any{"applyEdit": true, "workspaceEdit": map[string]any{"documentChanges": true,
		"resourceOperations": []string{"create", "rename", "delete"}, "changeAnnotationSupport": map[string]any{"groupsOnLabel": true}}},
	"window":       map[string]any{"workDoneProgress": true},
	"experimental": map[string]any{"codingplan": map[string]any{"showMarkdown": true}},
}

type docChange struct {
	Kind         string `json:"kind"`
	URI          string `json:"uri"`
	AnnotationID string `json:"annotationId"`
	Options      struct {
		IgnoreIfExists bool `json:"ignoreIfExists"`
	} `json:"options"`
	TextDocument *struct {
		URI     string `json:"uri"`
		Version *int   `json:"version"`
	} `json:"textDocument"`
	Edits []struct {
		textEdit
		AnnotationID string `json:"annotationId"`
	} `json:"edits"`
}

type annotatedEdit struct {
	Edit struct {
		Changes           map[string][]textEdit      `json:"changes"`
		DocumentChanges   []docChange                `json:"documentChanges"`
		ChangeAnnotations map[string]json.RawMessage `json:"changeAnnotations"`
	} `json:"edit"`
}

func TestWriteTestsAction(t *testing.T) {
	const reply = "package calc\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n\tif add(1, 2) != 3 {\n\t\tt.Fatal(\"add\")\n\t}\n}\n"
	const calc = "package calc\n\nfunc add(a, b int) int {\n\treturn a + b\n}\n"
	const existing = "package calc\n\nimport \"testing\"\n\nfunc TestOld(t *testing.T) {}"
	noCreate := map[string]any{"workspace": map[string]any{"applyEdit": true, "workspaceEdit": map[string]any{"documentChanges": true}}}
	tests := []struct {
		name     string
		caps     map[string]any
		existing *string // the test file on disk
		wantIns  []string
		want     []docChange // the edit's document changes, compared on kind, uri and edits
		wantMsg  string
	}{
		{"new test file", vscodeCaps, nil, []string{"new file, calc_test.go", "package calc: start it with `package calc`"},
			[]docChange{{Kind: "create", URI: "calc_test.go"}, {URI: "calc_test.go", Edits: editsOf("0:0-0:0", reply)}}, ""},
		{"existing test file", vscodeCaps, ptr(existing), []string{"appended to the existing file calc_test.go", `imports already: "testing"`},
			[]docChange{{URI: "calc_test.go", Edits: editsOf("4:29-4:29", "\n\n"+reply[len("package calc\n\nimport \"testing\"\n\n"):])}}, ""},
		{"no create: after the selection", noCreate, nil, []string{"new file, calc_test.go"},
			[]docChange{{URI: "calc.go", Edits: editsOf("4:1-4:1", "\n\n"+strings.TrimSuffix(reply, "\n"))}},
			"cannot create files through LSP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.existing != nil {
				if err := os.WriteFile(filepath.Join(dir, "calc_test.go"), []byte(*tt.existing), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			uri := "file://" + filepath.ToSlash(dir) + "/calc.go"
			b := newModelBackend(reply)
			c := newClient(t, Config{Backend: b}, nil)
			c.onRequest = func(m message) (any, error) {
				if m.Method == "workspace/applyEdit" {
					return map[string]any{"applied": true}, nil
				}
				return nil, nil
			}
			c.initialize(tt.caps, nil)
			c.open(uri, "go", calc)
			c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandRunAction, "arguments": []any{
				map[string]any{"uri": uri, "range": rangeOf(2, 0, 4, 1), "kind": lspx.KindTests}}}, nil)
			ins := string(b.requests()[0].Edit.Instruction)
			for _, w := range tt.wantIns {
				if !strings.Contains(ins, w) {
					t.Errorf("instruction %q lacks %q", ins, w)
				}
			}
			var apply annotatedEdit
			decode(t, c.serverRequest("workspace/applyEdit").Params, &apply)
			got := apply.Edit.DocumentChanges
			if len(got) != len(tt.want) {
				t.Fatalf("document changes = %s, want %d", mustJSON(got), len(tt.want))
			}
			preview := tt.caps["experimental"] != nil
			for i, w := range tt.want {
				g := got[i]
				if g.TextDocument != nil {
					g.URI = g.TextDocument.URI
					if g.TextDocument.Version != nil && tt.existing != nil {
						t.Errorf("a file not open is named with version %d", *g.TextDocument.Version)
					}
				}
				if strings.TrimPrefix(g.URI, "file://"+filepath.ToSlash(dir)+"/") != w.URI || g.Kind != w.Kind {
					t.Errorf("change %d: %s %s, want %s %s", i, g.Kind, g.URI, w.Kind, w.URI)
				}
				if w.Kind == "create" && !g.Options.IgnoreIfExists {
					t.Errorf("create without ignoreIfExists")
				}
				for j := range g.Edits {
					if preview != (g.Edits[j].AnnotationID == lspx.AnnotationPreview) {
						t.Errorf("edit annotation %q, preview %v", g.Edits[j].AnnotationID, preview)
					}
					g.Edits[j].AnnotationID = ""
				}
				if string(mustJSON(g.Edits)) != string(mustJSON(w.Edits)) {
					t.Errorf("change %d edits:\n got %s\nwant %s", i, mustJSON(g.Edits), mustJSON(w.Edits))
				}
			}
			if preview != (apply.Edit.ChangeAnnotations[lspx.AnnotationPreview] != nil) {
				t.Errorf("change annotations %s, preview %v", mustJSON(apply.Edit.ChangeAnnotations), preview)
			}
			if tt.wantMsg != "" {
				if msg := c.note("window/showMessage"); !strings.Contains(string(msg.Params), tt.wantMsg) {
					t.Errorf("showMessage = %s, want %q", msg.Params, tt.wantMsg)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// editsOf is one edit of range "l:c-l:c" to text.
func editsOf(r, text string) []struct {
	textEdit
	AnnotationID string `json:"annotationId"`
} {
	var sl, sc, el, ec int
	if _, err := fmt.Sscanf(r, "%d:%d-%d:%d", &sl, &sc, &el, &ec); err != nil {
		panic(err)
	}
	return []struct {
		textEdit
		AnnotationID string `json:"annotationId"`
	}{{textEdit: textEdit{Range: rangeOf(sl, sc, el, ec), NewText: text}}}
}

func TestExplainShowsMarkdown(t *testing.T) {
	answer := "It adds two numbers.\n\n" + strings.Repeat("- a point worth making about the code\n", 40)
	for _, md := range []bool{true, false} {
		b := newModelBackend(answer)
		c := newClient(t, Config{Backend: b}, nil)
		caps := map[string]any{}
		if md {
			caps = vscodeCaps
		}
		c.initialize(caps, nil)
		c.open("file:///work/a.go", "go", goSource)
		c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandRunAction, "arguments": []any{
			map[string]any{"uri": "file:///work/a.go", "range": rangeOf(2, 0, 4, 1), "kind": lspx.KindExplain}}}, nil)
		if !md {
			var msg protocol.ShowMessageParams
			decode(t, c.note("window/showMessage").Params, &msg)
			if !strings.HasSuffix(msg.Message, strings.TrimSpace(answer)) {
				t.Errorf("showMessage = %q, want the whole answer", msg.Message)
			}
			continue
		}
		var p lspx.ShowMarkdownParams
		decode(t, c.note(lspx.MethodShowMarkdown).Params, &p)
		if want := "# Explain: a.go, lines 3–5\n\n" + strings.TrimSpace(answer) + "\n"; p.Markdown != want || p.Title != "Explain: a.go" {
			t.Errorf("showMarkdown = %q %q\nwant %q", p.Title, p.Markdown, want)
		}
		if ins := string(b.requests()[0].Edit.Instruction); !strings.Contains(ins, "Markdown") {
			t.Errorf("instruction %q does not ask for Markdown", ins)
		}
	}
}

func TestActionPreviewDiscarded(t *testing.T) {
	b := newModelBackend("// add adds.\nfunc add(a, b int) int {\n\treturn a - b\n}")
	c := newClient(t, Config{Backend: b}, nil)
	c.onRequest = func(m message) (any, error) {
		if m.Method == "workspace/applyEdit" {
			return map[string]any{"applied": false}, nil // the user discarded the preview
		}
		return nil, nil
	}
	c.initialize(vscodeCaps, nil)
	c.open("file:///work/a.go", "go", goSource)
	doc := findAction(t, listActions(t, c, rangeOf(2, 0, 4, 1), nil, nil), lspx.KindDocument)
	if m := c.wait(execAction(c, doc)); m.Error != nil {
		t.Fatalf("run: %s", m.Error.Message)
	}
	var tok struct {
		Token json.RawMessage `json:"token"`
	}
	decode(t, c.serverRequest("window/workDoneProgress/create").Params, &tok)
	var apply annotatedEdit
	decode(t, c.serverRequest("workspace/applyEdit").Params, &apply)
	if len(apply.Edit.DocumentChanges) != 1 || apply.Edit.DocumentChanges[0].Edits[0].AnnotationID != lspx.AnnotationPreview {
		t.Errorf("edit = %s, want one annotated edit", mustJSON(apply.Edit))
	}
	values := progressValues(t, c, tok.Token, 2)
	var reports []string
	for _, v := range values {
		if v["kind"] == "report" {
			reports = append(reports, v["message"].(string))
		}
	}
	if len(reports) == 0 || reports[0] != "writing documentation… 2 lines so far" {
		t.Errorf("progress reports = %q", reports)
	}
	if msg := c.note("window/showMessage"); !strings.Contains(string(msg.Params), "not applied (discarded") {
		t.Errorf("showMessage = %s", msg.Params)
	}
}
