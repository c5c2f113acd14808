package server

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/codingplan/codingplan/lsp/internal/complete"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

// recorder is an engine that remembers its last input and suggests "X" in place of the
// character after the cursor.
type recorder struct {
	mu   sync.Mutex
	last complete.Input
}

func (r *recorder) engine() *fakeEngine {
	return &fakeEngine{complete: func(_ context.Context, in complete.Input) (complete.Result, error) {
		r.mu.Lock()
		r.last = in
		r.mu.Unlock()
		end := min(in.Offset+1, len(in.Text))
		return complete.Result{Items: []complete.Item{{InsertText: "X", Start: in.Offset, End: end, ID: "i1"}}}, nil
	}}
}

func (r *recorder) input() complete.Input {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func TestEncodings(t *testing.T) {
	const text = "a😀b\r\nxé\tz"
	tests := []struct {
		enc       string
		at        map[string]any // the cursor: after the emoji, or after the tab
		wantOff   int
		wantRange map[string]any
	}{
		{"utf-16", pos(0, 3), 5, rangeOf(0, 3, 0, 4)},
		{"utf-8", pos(0, 5), 5, rangeOf(0, 5, 0, 6)},
		{"utf-32", pos(0, 2), 5, rangeOf(0, 2, 0, 3)},
		{"utf-16", pos(1, 3), 12, rangeOf(1, 3, 1, 4)},
		{"utf-8", pos(1, 4), 12, rangeOf(1, 4, 1, 5)},
		{"utf-32", pos(1, 3), 12, rangeOf(1, 3, 1, 4)},
	}
	for _, tt := range tests {
		t.Run(tt.enc, func(t *testing.T) {
			rec := &recorder{}
			c := newClient(t, Config{Engine: rec.engine(), Backend: &fakeBackend{}}, nil)
			c.initialize(map[string]any{"general": map[string]any{"positionEncodings": []string{tt.enc}},
				"textDocument": map[string]any{"inlineCompletion": map[string]any{}}}, nil)
			c.open("file:///work/a.go", "go", text)
			var list struct {
				Items []struct {
					InsertText string         `json:"insertText"`
					Range      map[string]any `json:"range"`
					Command    struct {
						Command   string `json:"command"`
						Arguments []lspx.AcceptCompletionArgs
					} `json:"command"`
				} `json:"items"`
			}
			c.result("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": "file:///work/a.go"},
				"position": tt.at, "context": map[string]any{"triggerKind": 1}}, &list)
			if got := rec.input().Offset; got != tt.wantOff {
				t.Errorf("engine offset = %d, want %d", got, tt.wantOff)
			}
			if len(list.Items) != 1 {
				t.Fatalf("items = %+v", list.Items)
			}
			it := list.Items[0]
			if got, want := string(mustJSON(it.Range)), string(mustJSON(tt.wantRange)); got != want {
				t.Errorf("range = %s, want %s", got, want)
			}
			if it.Command.Command != lspx.CommandAcceptCompletion || len(it.Command.Arguments) != 1 ||
				it.Command.Arguments[0] != (lspx.AcceptCompletionArgs{URI: "file:///work/a.go", ID: "i1"}) {
				t.Errorf("command = %+v", it.Command)
			}
		})
	}
}

func TestSync(t *testing.T) {
	rec := &recorder{}
	c := newClient(t, Config{Engine: rec.engine(), Backend: &fakeBackend{}}, nil)
	c.initialize(inlineCaps, nil)
	uri := "file:///work/a.go"
	c.open(uri, "go", "hello\r\nworld")
	change := func(version int, changes ...map[string]any) {
		c.notify("textDocument/didChange", map[string]any{"textDocument": map[string]any{"uri": uri, "version": version},
			"contentChanges": changes})
	}
	edit := func(r map[string]any, text string) map[string]any { return map[string]any{"range": r, "text": text} }
	check := func(wantText string, wantVersion int32) {
		t.Helper()
		c.result("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": uri}, "position": pos(0, 0)}, nil)
		if in := rec.input(); in.Text != wantText || in.Version != wantVersion {
			t.Errorf("document = %q v%d, want %q v%d", in.Text, in.Version, wantText, wantVersion)
		}
	}
	change(2, edit(rangeOf(0, 5, 0, 5), "!"))
	check("hello!\r\nworld", 2)
	change(3, edit(rangeOf(0, 6, 1, 0), " "), edit(rangeOf(0, 0, 0, 1), "J"))
	check("Jello! world", 3)
	change(4, map[string]any{"text": "full 😀\n"}) // no range: the whole text
	check("full 😀\n", 4)
	change(5, edit(rangeOf(0, 7, 0, 7), "x"), map[string]any{"text": "again"}, edit(rangeOf(0, 5, 0, 5), "!"))
	check("again!", 5)

	// A change outside the document drops it, and the client is told.
	change(6, edit(rangeOf(7, 0, 7, 0), "?"))
	msg := c.note("window/logMessage")
	if !strings.Contains(string(msg.Params), "could not be applied") {
		t.Errorf("logMessage = %s", msg.Params)
	}
	wantError(t, c.call("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": uri},
		"position": pos(0, 0)}), -32602, "not open")

	c.notify("textDocument/didClose", map[string]any{"textDocument": map[string]any{"uri": uri}})
	c.open(uri, "go", "back")
	check("back", 1)
	c.notify("textDocument/didClose", map[string]any{"textDocument": map[string]any{"uri": uri}})
	c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandStatus}, nil) // after the close
}

func TestOtherDocumentsAndPaths(t *testing.T) {
	rec := &recorder{}
	c := newClient(t, Config{Engine: rec.engine(), Backend: &fakeBackend{}}, nil)
	var res map[string]any
	c.result("initialize", map[string]any{"capabilities": inlineCaps, "workspaceFolders": []any{
		map[string]any{"uri": "file:///w/one", "name": "one"}, map[string]any{"uri": "file:///w/one/nested", "name": "nested"}}}, &res)
	c.notify("initialized", map[string]any{})
	c.open("file:///w/one/a.go", "go", "a")
	c.open("file:///w/one/nested/pkg/b.go", "go", "b")
	c.open("file:///elsewhere/c.py", "python", "c")
	c.open("file:///w/onex/d.go", "go", "d") // a sibling whose name starts like a root's
	c.notify("workspace/didChangeWorkspaceFolders", map[string]any{"event": map[string]any{
		"added": []any{map[string]any{"uri": "file:///elsewhere", "name": "e"}}, "removed": []any{}}})
	paths := map[string]string{}
	for _, uri := range []string{"file:///w/one/a.go", "file:///w/one/nested/pkg/b.go", "file:///elsewhere/c.py", "file:///w/onex/d.go"} {
		c.result("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": uri}, "position": pos(0, 0)}, nil)
		in := rec.input()
		paths[uri] = in.RelPath
		if len(in.Others) != 3 {
			t.Errorf("%s: %d other documents, want 3", uri, len(in.Others))
		}
	}
	want := map[string]string{"file:///w/one/a.go": "a.go", "file:///w/one/nested/pkg/b.go": "pkg/b.go", "file:///elsewhere/c.py": "c.py", "file:///w/onex/d.go": "d.go"}
	for uri, p := range want {
		if paths[uri] != p {
			t.Errorf("relPath(%s) = %q, want %q", uri, paths[uri], p)
		}
	}
	c.notify("workspace/didChangeWorkspaceFolders", map[string]any{"event": map[string]any{
		"added": []any{}, "removed": []any{map[string]any{"uri": "file:///w/one/nested", "name": "nested"}}}})
	c.result("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": "file:///w/one/nested/pkg/b.go"}, "position": pos(0, 0)}, nil)
	if got := rec.input().RelPath; got != "nested/pkg/b.go" {
		t.Errorf("after removing the nested root, relPath = %q", got)
	}
}
