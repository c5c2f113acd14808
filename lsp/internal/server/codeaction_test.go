package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
	"github.com/codingplan/codingplan/lsp/internal/remote"
	wire "github.com/codingplan/codingplan/shared"
)

const goSource = "package a\n\nfunc add(a, b int) int {\n\treturn a - b\n}\n"

// modelBackend answers every edit request with reply, in two deltas, and records requests.
type modelBackend struct {
	fakeBackend
	mu    sync.Mutex
	reqs  []wire.ClientFrame
	reply string
	// gate, when set, is waited on (or the context) before answering.
	gate chan struct{}
	// started is closed at the first request.
	started chan struct{}
}

func newModelBackend(reply string) *modelBackend {
	b := &modelBackend{reply: reply, started: make(chan struct{})}
	var once sync.Once
	b.stream = func(ctx context.Context, req wire.ClientFrame, onDelta func([]byte)) (wire.ServerFrame, error) {
		b.mu.Lock()
		b.reqs = append(b.reqs, req)
		b.mu.Unlock()
		once.Do(func() { close(b.started) })
		if b.gate != nil {
			select {
			case <-b.gate:
			case <-ctx.Done():
				return wire.ServerFrame{}, &wire.Error{Code: wire.CodeCanceled}
			}
		}
		half := len(b.reply) / 2
		onDelta([]byte(b.reply[:half]))
		onDelta([]byte(b.reply[half:]))
		return wire.ServerFrame{Type: wire.TypeDone, FinishReason: wire.FinishStop}, nil
	}
	return b
}

func (b *modelBackend) requests() []wire.ClientFrame {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]wire.ClientFrame(nil), b.reqs...)
}

type codeAction struct {
	Title   string          `json:"title"`
	Kind    string          `json:"kind"`
	Data    json.RawMessage `json:"data"`
	Command *struct {
		Command   string            `json:"command"`
		Arguments []json.RawMessage `json:"arguments"`
	} `json:"command"`
	Diagnostics []json.RawMessage `json:"diagnostics"`
}

var addDiagnostic = map[string]any{"range": rangeOf(3, 10, 3, 11), "severity": 1, "source": "vet", "message": "wrong operator"}

func listActions(t *testing.T, c *client, r map[string]any, diags []any, only []string) []codeAction {
	t.Helper()
	ctx := map[string]any{"diagnostics": diags}
	if only != nil {
		ctx["only"] = only
	}
	var actions []codeAction
	c.result("textDocument/codeAction", map[string]any{"textDocument": map[string]any{"uri": "file:///work/a.go"},
		"range": r, "context": ctx}, &actions)
	return actions
}

func TestCodeActionList(t *testing.T) {
	b := newModelBackend("unused")
	c := newClient(t, Config{Backend: b}, nil)
	c.initialize(inlineCaps, nil)
	c.open("file:///work/a.go", "go", goSource)

	kinds := func(actions []codeAction) string {
		var k []string
		for _, a := range actions {
			k = append(k, a.Kind)
		}
		return strings.Join(k, " ")
	}
	all := listActions(t, c, rangeOf(2, 0, 4, 1), []any{addDiagnostic}, nil)
	if got, want := kinds(all), strings.Join(lspx.ActionKinds, " "); got != want {
		t.Errorf("kinds = %s\nwant    %s", got, want)
	}
	for _, a := range all {
		want := lspx.CommandRunAction
		if a.Kind == lspx.KindRewrite {
			want = lspx.CommandRewrite
		}
		if a.Command == nil || a.Command.Command != want || len(a.Command.Arguments) != 1 || len(a.Data) != 0 {
			t.Errorf("%s: command %+v data %s, want the %s command", a.Kind, a.Command, a.Data, want)
			continue
		}
		var args lspx.RunActionArgs
		decode(t, a.Command.Arguments[0], &args)
		if args.URI != "file:///work/a.go" || args.Version == nil || *args.Version != 1 {
			t.Errorf("%s: arguments %+v", a.Kind, args)
		}
		if a.Kind == lspx.KindFix && (len(args.Diagnostics) != 1 || args.Diagnostics[0] != "line 4 error (vet): wrong operator") {
			t.Errorf("fix diagnostics = %q", args.Diagnostics)
		}
	}
	// Resolving gives the action back as it is, without asking the model.
	for _, a := range all {
		var resolved codeAction
		c.result("codeAction/resolve", a, &resolved)
		if string(mustJSON(resolved)) != string(mustJSON(a)) {
			t.Errorf("resolve changed %s into %s", mustJSON(a), mustJSON(resolved))
		}
	}
	c.result("codeAction/resolve", map[string]any{"title": "someone else's"}, nil)
	if got := kinds(listActions(t, c, rangeOf(3, 0, 3, 0), []any{addDiagnostic}, nil)); got != lspx.KindFix {
		t.Errorf("empty selection with a diagnostic: %s, want the fix only", got)
	}
	if got := kinds(listActions(t, c, rangeOf(3, 0, 3, 0), nil, nil)); got != "" {
		t.Errorf("empty selection without diagnostics: %s, want none", got)
	}
	if got := kinds(listActions(t, c, rangeOf(2, 0, 4, 1), []any{addDiagnostic}, []string{"refactor.rewrite"})); got !=
		lspx.KindDocument+" "+lspx.KindSimplify+" "+lspx.KindRewrite {
		t.Errorf("only refactor.rewrite: %s", got)
	}
	if got := kinds(listActions(t, c, rangeOf(2, 0, 4, 1), nil, []string{"quickfix"})); got != "" {
		t.Errorf("only quickfix without diagnostics: %s", got)
	}
	if n := len(b.requests()); n != 0 {
		t.Errorf("listing sent %d model requests, want none", n)
	}
}

func findAction(t *testing.T, actions []codeAction, kind string) codeAction {
	t.Helper()
	for _, a := range actions {
		if a.Kind == kind {
			return a
		}
	}
	t.Fatalf("no %s action among %+v", kind, actions)
	return codeAction{}
}

type applyEditParams struct {
	Label string `json:"label"`
	Edit  struct {
		Changes         map[string][]textEdit `json:"changes"`
		DocumentChanges []struct {
			TextDocument struct {
				URI     string `json:"uri"`
				Version *int   `json:"version"`
			} `json:"textDocument"`
			Edits []textEdit `json:"edits"`
		} `json:"documentChanges"`
	} `json:"edit"`
}

type textEdit struct {
	Range   map[string]any `json:"range"`
	NewText string         `json:"newText"`
}

// execAction runs an offered action the way a client does: by executing its command.
func execAction(c *client, a codeAction) <-chan message {
	return c.start(newID(), "workspace/executeCommand", map[string]any{"command": a.Command.Command, "arguments": a.Command.Arguments})
}

func TestCodeActionRun(t *testing.T) {
	b := newModelBackend("```go\n\treturn a + b\n```")
	c := newClient(t, Config{Backend: b}, nil)
	c.onRequest = func(m message) (any, error) {
		if m.Method == "workspace/applyEdit" {
			return map[string]any{"applied": true}, nil
		}
		return nil, nil
	}
	c.initialize(inlineCaps, nil)
	c.open("file:///work/a.go", "go", goSource)
	fix := findAction(t, listActions(t, c, rangeOf(3, 1, 3, 13), []any{addDiagnostic}, nil), lspx.KindFix)

	if m := c.wait(execAction(c, fix)); m.Error != nil {
		t.Fatalf("run: %s", m.Error.Message)
	}
	create := c.serverRequest("window/workDoneProgress/create")
	var tok struct {
		Token json.RawMessage `json:"token"`
	}
	decode(t, create.Params, &tok)
	var apply applyEditParams
	decode(t, c.serverRequest("workspace/applyEdit").Params, &apply)
	if len(apply.Edit.DocumentChanges) != 1 {
		t.Fatalf("applyEdit = %+v", apply)
	}
	dc := apply.Edit.DocumentChanges[0]
	if dc.TextDocument.URI != "file:///work/a.go" || dc.TextDocument.Version == nil || *dc.TextDocument.Version != 1 {
		t.Errorf("edit names %+v, want version 1", dc.TextDocument)
	}
	want := textEdit{Range: rangeOf(3, 10, 3, 11), NewText: "+"}
	if len(dc.Edits) != 1 || string(mustJSON(dc.Edits[0])) != string(mustJSON(want)) {
		t.Errorf("edits = %s, want the minimal %s", mustJSON(dc.Edits), mustJSON(want))
	}
	progress := progressValues(t, c, tok.Token, 2)
	if progress[0]["kind"] != "begin" || progress[0]["cancellable"] != true || progress[len(progress)-1]["kind"] != "end" ||
		progress[len(progress)-1]["message"] != "applied" {
		t.Errorf("progress = %v", progress)
	}

	reqs := b.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d model requests", len(reqs))
	}
	e := reqs[0].Edit
	if reqs[0].Op != wire.OpEdit || e == nil || string(e.Selection) != "\treturn a - b" ||
		len(e.Diagnostics) != 1 || string(e.Diagnostics[0]) != "line 4 error (vet): wrong operator" ||
		!strings.Contains(string(e.Instruction), "diagnostics") || e.Language != "go" || e.Path != "a.go" {
		t.Errorf("request = %+v edit %+v", reqs[0], e)
	}
}

// progressValues collects $/progress values for token until the end, at least n.
func progressValues(t *testing.T, c *client, token json.RawMessage, n int) []map[string]any {
	t.Helper()
	var out []map[string]any
	for {
		var p struct {
			Token json.RawMessage `json:"token"`
			Value map[string]any  `json:"value"`
		}
		decode(t, c.note("$/progress").Params, &p)
		if string(p.Token) != string(token) {
			continue
		}
		out = append(out, p.Value)
		if p.Value["kind"] == "end" && len(out) >= n {
			return out
		}
	}
}

func TestCodeActionVersionChanged(t *testing.T) {
	b := newModelBackend("func add(a, b int) int { return a + b }")
	b.gate = make(chan struct{})
	c := newClient(t, Config{Backend: b}, nil)
	c.initialize(inlineCaps, nil)
	c.open("file:///work/a.go", "go", goSource)
	simplify := findAction(t, listActions(t, c, rangeOf(2, 0, 4, 1), nil, nil), lspx.KindSimplify)
	ch := execAction(c, simplify)
	<-b.started
	c.notify("textDocument/didChange", map[string]any{"textDocument": map[string]any{"uri": "file:///work/a.go", "version": 2},
		"contentChanges": []any{map[string]any{"range": rangeOf(0, 0, 0, 0), "text": "// edited\n"}}})
	c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandStatus}, nil) // the change is in
	close(b.gate)
	if m := c.wait(ch); m.Error != nil {
		t.Fatalf("run: %s", m.Error.Message)
	}
	msg := c.note("window/showMessage")
	if !strings.Contains(string(msg.Params), "the document changed while the model was working") {
		t.Errorf("showMessage = %s", msg.Params)
	}
	assertNoRequest(t, c, "workspace/applyEdit")

	// An action offered before a change is not run at all.
	if m := c.wait(execAction(c, simplify)); m.Error != nil {
		t.Fatalf("run: %s", m.Error.Message)
	}
	if msg := c.note("window/showMessage"); !strings.Contains(string(msg.Params), "changed since the action was offered") {
		t.Errorf("showMessage = %s", msg.Params)
	}
	if n := len(b.requests()); n != 1 {
		t.Errorf("%d model requests, want 1", n)
	}
}

func assertNoRequest(t *testing.T, c *client, method string) {
	t.Helper()
	for {
		select {
		case m := <-c.requests:
			if m.Method == method {
				t.Errorf("unexpected %s: %s", method, m.Params)
			}
		default:
			return
		}
	}
}

func TestCodeActionProgressCancel(t *testing.T) {
	b := newModelBackend("never")
	b.gate = make(chan struct{})
	c := newClient(t, Config{Backend: b}, nil)
	c.initialize(inlineCaps, nil)
	c.open("file:///work/a.go", "go", goSource)
	doc := findAction(t, listActions(t, c, rangeOf(2, 0, 4, 1), nil, nil), lspx.KindDocument)
	ch := execAction(c, doc)
	var create struct {
		Token json.RawMessage `json:"token"`
	}
	decode(t, c.serverRequest("window/workDoneProgress/create").Params, &create)
	<-b.started
	c.notify("window/workDoneProgress/cancel", map[string]any{"token": create.Token})
	if m := c.wait(ch); m.Error != nil {
		t.Fatalf("run: %s", m.Error.Message)
	}
	values := progressValues(t, c, create.Token, 2)
	if end := values[len(values)-1]; end["message"] != "cancelled" {
		t.Errorf("progress end = %v, want cancelled", end)
	}
	assertNoRequest(t, c, "workspace/applyEdit")
}

func TestCodeActionCommands(t *testing.T) {
	// A client without versioned edits gets plain changes.
	caps := map[string]any{"workspace": map[string]any{"applyEdit": true}}
	tests := []struct {
		name     string
		reply    string
		command  string
		args     map[string]any
		wantEdit textEdit // zero: no edit
		wantMsg  string
	}{
		{"run action: tests insert after the selection", "func TestAdd(t *testing.T) {}", lspx.CommandRunAction,
			map[string]any{"kind": lspx.KindTests, "range": rangeOf(2, 0, 4, 1)},
			textEdit{Range: rangeOf(4, 1, 4, 1), NewText: "\n\nfunc TestAdd(t *testing.T) {}"}, ""},
		{"rewrite with an instruction", "func add(x, y int) int {\n\treturn x - y\n}", lspx.CommandRewrite,
			map[string]any{"range": rangeOf(2, 0, 4, 1), "instruction": "rename the parameters"},
			textEdit{Range: rangeOf(2, 9, 3, 13), NewText: "x, y int) int {\n\treturn x - y"}, ""},
		{"explain shows a message", "It adds two numbers.", lspx.CommandRunAction,
			map[string]any{"kind": lspx.KindExplain, "range": rangeOf(2, 0, 4, 1)}, textEdit{}, "It adds two numbers."},
		{"empty range means the line", "\treturn a + b", lspx.CommandRunAction,
			map[string]any{"kind": lspx.KindSimplify, "range": rangeOf(3, 2, 3, 2)},
			textEdit{Range: rangeOf(3, 10, 3, 11), NewText: "+"}, ""},
		{"nothing to change", "\treturn a - b", lspx.CommandRunAction,
			map[string]any{"kind": lspx.KindSimplify, "range": rangeOf(3, 0, 3, 13)}, textEdit{}, "no change was needed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newModelBackend(tt.reply)
			c := newClient(t, Config{Backend: b}, nil)
			c.onRequest = func(m message) (any, error) { return map[string]any{"applied": true}, nil }
			c.initialize(caps, nil)
			c.open("file:///work/a.go", "go", goSource)
			if tt.command == lspx.CommandRunAction {
				a := findAction(t, listActions(t, c, rangeOf(2, 0, 4, 1), nil, nil), lspx.KindSimplify)
				if a.Command == nil || a.Command.Command != lspx.CommandRunAction {
					t.Errorf("action = %+v", a)
				}
			}
			tt.args["uri"] = "file:///work/a.go"
			c.result("workspace/executeCommand", map[string]any{"command": tt.command, "arguments": []any{tt.args}}, nil)
			if tt.wantMsg != "" {
				if msg := c.note("window/showMessage"); !strings.Contains(string(msg.Params), tt.wantMsg) {
					t.Errorf("showMessage = %s, want %q", msg.Params, tt.wantMsg)
				}
				assertNoRequest(t, c, "workspace/applyEdit")
				return
			}
			var apply applyEditParams
			decode(t, c.serverRequest("workspace/applyEdit").Params, &apply)
			edits := apply.Edit.Changes["file:///work/a.go"]
			if len(apply.Edit.DocumentChanges) != 0 || len(edits) != 1 || string(mustJSON(edits[0])) != string(mustJSON(tt.wantEdit)) {
				t.Errorf("applyEdit = %+v\nwant edit %s", apply.Edit, mustJSON(tt.wantEdit))
			}
			if tt.command == lspx.CommandRewrite {
				if ins := string(b.requests()[0].Edit.Instruction); !strings.HasPrefix(ins, "rename the parameters") {
					t.Errorf("instruction = %q", ins)
				}
			}
		})
	}
}

func TestCodeActionRefusals(t *testing.T) {
	const secretSource = "package a\n\nconst apiKey = \"sk-abcdefghijklmnopqrstuvwxyz123456\"\n"
	tests := []struct {
		name    string
		uri     string
		text    string
		kind    string
		rng     map[string]any
		backend func(*modelBackend)
		wantMsg string
		sent    int
	}{
		{"secret in the selection", "file:///work/a.go", secretSource, lspx.KindSimplify, rangeOf(2, 0, 3, 0), nil, "looks like a secret", 0},
		{"ignored file", "file:///work/server.pem", "key material", lspx.KindExplain, rangeOf(0, 0, 0, 3), nil, "matches the ignore setting", 0},
		{"backend error", "file:///work/a.go", goSource, lspx.KindSimplify, rangeOf(2, 0, 4, 1), func(b *modelBackend) {
			b.stream = func(context.Context, wire.ClientFrame, func([]byte)) (wire.ServerFrame, error) {
				return wire.ServerFrame{}, &wire.Error{Code: wire.CodeRateLimited, Message: "3 of 3 streams in use", RetryAfterMS: 2000}
			}
		}, "your plan's requests at once are all in use (the backend says: 3 of 3 streams in use). Try again in 2.0 s.", 0},
		{"provider failed", "file:///work/a.go", goSource, lspx.KindSimplify, rangeOf(2, 0, 4, 1), func(b *modelBackend) {
			b.stream = func(context.Context, wire.ClientFrame, func([]byte)) (wire.ServerFrame, error) {
				return wire.ServerFrame{}, &wire.Error{Code: wire.CodeUpstreamError, Message: "the model provider failed"}
			}
		}, "codingplan: Simplify failed: the model could not answer this request (the backend says: the model provider failed). Try again later.", 0},
		// The backend's local model completes code only, and says so.
		{"model cannot edit", "file:///work/a.go", goSource, lspx.KindSimplify, rangeOf(2, 0, 4, 1), func(b *modelBackend) {
			b.stream = func(context.Context, wire.ClientFrame, func([]byte)) (wire.ServerFrame, error) {
				return wire.ServerFrame{}, &wire.Error{Code: wire.CodeBadRequest,
					Message: "this model only completes code; code actions need a chat model configured on the backend"}
			}
		}, "codingplan: Simplify failed: the backend refused the request (the backend says: this model only completes code; " +
			"code actions need a chat model configured on the backend).", 0},
		{"disconnected", "file:///work/a.go", goSource, lspx.KindExplain, rangeOf(2, 0, 4, 1), func(b *modelBackend) {
			b.stream = func(context.Context, wire.ClientFrame, func([]byte)) (wire.ServerFrame, error) {
				return wire.ServerFrame{}, fmt.Errorf("%w: connection lost", remote.ErrDisconnected)
			}
		}, "codingplan: Explain failed: the backend cannot be reached right now", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newModelBackend("x")
			if tt.backend != nil {
				tt.backend(b)
			}
			c := newClient(t, Config{Backend: b}, nil)
			c.initialize(map[string]any{}, nil)
			c.open(tt.uri, "go", tt.text)
			c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandRunAction, "arguments": []any{
				map[string]any{"uri": tt.uri, "range": tt.rng, "kind": tt.kind}}}, nil)
			var msg protocol.ShowMessageParams
			decode(t, c.note("window/showMessage").Params, &msg)
			if !strings.Contains(msg.Message, tt.wantMsg) {
				t.Errorf("showMessage = %q, want %q", msg.Message, tt.wantMsg)
			}
			for _, code := range []wire.Code{wire.CodeRateLimited, wire.CodeUpstreamError} {
				if strings.Contains(msg.Message, string(code)) {
					t.Errorf("showMessage %q shows the code %s, not plain words", msg.Message, code)
				}
			}
			if n := len(b.requests()); n != tt.sent {
				t.Errorf("%d requests sent, want %d", n, tt.sent)
			}
		})
	}
}
