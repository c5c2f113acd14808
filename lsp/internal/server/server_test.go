package server

import (
	"go.lsp.dev/protocol"

	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/codingplan/codingplan/lsp/internal/complete"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

func TestInitializeEncoding(t *testing.T) {
	tests := []struct {
		name   string
		offers any
		want   string
	}{
		{"none offered", nil, "utf-16"},
		{"utf-8 preferred when offered", []string{"utf-16", "utf-8"}, "utf-8"},
		{"utf-32 only", []string{"utf-32"}, "utf-32"},
		{"utf-16 over utf-32", []string{"utf-32", "utf-16"}, "utf-16"},
		{"unknown only", []string{"utf-7"}, "utf-16"},
		{"wrong type is tolerated", "utf-8", "utf-16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, Config{}, nil)
			caps := map[string]any{}
			if tt.offers != nil {
				caps["general"] = map[string]any{"positionEncodings": tt.offers}
			}
			res := c.initialize(caps, nil)
			got := res["capabilities"].(map[string]any)["positionEncoding"]
			if got != tt.want {
				t.Errorf("positionEncoding = %v, want %s", got, tt.want)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	c := newClient(t, Config{Version: "1.2.3"}, nil)
	var res struct {
		Capabilities struct {
			TextDocumentSync struct {
				OpenClose bool `json:"openClose"`
				Change    int  `json:"change"`
			} `json:"textDocumentSync"`
			InlineCompletionProvider *struct{} `json:"inlineCompletionProvider"`
			CompletionProvider       *struct{} `json:"completionProvider"`
			CodeActionProvider       struct {
				CodeActionKinds []string `json:"codeActionKinds"`
				ResolveProvider bool     `json:"resolveProvider"`
			} `json:"codeActionProvider"`
			ExecuteCommandProvider struct {
				Commands []string `json:"commands"`
			} `json:"executeCommandProvider"`
			Workspace struct {
				WorkspaceFolders struct {
					Supported bool `json:"supported"`
				} `json:"workspaceFolders"`
			} `json:"workspace"`
		} `json:"capabilities"`
		ServerInfo struct {
			Name, Version string
		} `json:"serverInfo"`
	}
	c.result("initialize", map[string]any{"capabilities": map[string]any{}}, &res)
	caps := res.Capabilities
	if !caps.TextDocumentSync.OpenClose || caps.TextDocumentSync.Change != 2 {
		t.Errorf("textDocumentSync = %+v, want openClose and incremental (2)", caps.TextDocumentSync)
	}
	if caps.InlineCompletionProvider == nil || caps.CompletionProvider == nil {
		t.Error("inline completion or completion not advertised")
	}
	if !caps.CodeActionProvider.ResolveProvider || strings.Join(caps.CodeActionProvider.CodeActionKinds, ",") != strings.Join(lspx.ActionKinds, ",") {
		t.Errorf("codeActionProvider = %+v", caps.CodeActionProvider)
	}
	if strings.Join(caps.ExecuteCommandProvider.Commands, ",") != strings.Join(lspx.Commands, ",") {
		t.Errorf("commands = %v", caps.ExecuteCommandProvider.Commands)
	}
	if !caps.Workspace.WorkspaceFolders.Supported {
		t.Error("workspace folders not supported")
	}
	if res.ServerInfo.Name != "codingplan-lsp" || res.ServerInfo.Version != "1.2.3" {
		t.Errorf("serverInfo = %+v", res.ServerInfo)
	}
	wantError(t, c.call("initialize", map[string]any{"capabilities": map[string]any{}}), -32600, "already initialized")
}

func TestLifecycle(t *testing.T) {
	t.Run("requests before initialize", func(t *testing.T) {
		c := newClient(t, Config{}, nil)
		wantError(t, c.call("textDocument/inlineCompletion", map[string]any{}), -32002, "not initialized")
		// A notification before initialize is dropped: the document is not open afterwards.
		c.open("file:///work/a.go", "go", "x")
		c.initialize(map[string]any{}, nil)
		wantError(t, c.call("textDocument/inlineCompletion", map[string]any{
			"textDocument": map[string]any{"uri": "file:///work/a.go"}, "position": pos(0, 0)}), -32602, "not open")
	})
	t.Run("shutdown then exit", func(t *testing.T) {
		c := newClient(t, Config{}, nil)
		c.initialize(map[string]any{}, nil)
		c.result("shutdown", nil, nil)
		wantError(t, c.call("textDocument/completion", map[string]any{}), -32600, "shutting down")
		wantError(t, c.call("shutdown", nil), -32600, "shutting down")
		if err := c.exit(false); err != nil {
			t.Errorf("Run = %v, want nil after shutdown and exit", err)
		}
	})
	t.Run("exit without shutdown", func(t *testing.T) {
		c := newClient(t, Config{}, nil)
		c.initialize(map[string]any{}, nil)
		if err := c.exit(false); !errors.Is(err, ErrNoShutdown) {
			t.Errorf("Run = %v, want ErrNoShutdown", err)
		}
	})
	t.Run("exit before initialize", func(t *testing.T) {
		c := newClient(t, Config{}, nil)
		if err := c.exit(false); !errors.Is(err, ErrNoShutdown) {
			t.Errorf("Run = %v, want ErrNoShutdown", err)
		}
	})
	t.Run("input ends", func(t *testing.T) {
		c := newClient(t, Config{}, nil)
		c.initialize(map[string]any{}, nil)
		c.w.Close()
		if err := <-c.done; !errors.Is(err, ErrClosed) {
			t.Errorf("Run = %v, want ErrClosed", err)
		}
		c.done <- nil
	})
}

func TestMethodNotFound(t *testing.T) {
	c := newClient(t, Config{}, nil)
	c.initialize(map[string]any{}, nil)
	wantError(t, c.call("textDocument/hover", map[string]any{}), -32601, "method not found: textDocument/hover")
	// Unknown notifications, $/ ones included, are ignored and the server goes on.
	c.notify("$/setTrace", map[string]any{"value": "verbose"})
	c.notify("custom/thing", map[string]any{})
	c.notify("$/progress", 5)
	var st lspx.Status
	c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandStatus}, &st)
}

func TestInvalidParams(t *testing.T) {
	c := newClient(t, Config{Engine: &fakeEngine{}, Backend: &fakeBackend{}}, nil)
	c.initialize(inlineCaps, nil)
	c.open("file:///work/a.go", "go", "package a\n\nfunc f() {}\n")
	doc := map[string]any{"uri": "file:///work/a.go"}
	tests := []struct {
		name   string
		method string
		params any
		want   string
	}{
		{"no params", "textDocument/inlineCompletion", nil, "params are required"},
		{"params not an object", "textDocument/inlineCompletion", []int{1}, "invalid params"},
		{"line of the wrong type", "textDocument/inlineCompletion", map[string]any{"textDocument": doc,
			"position": map[string]any{"line": "1", "character": 0}}, "position.line must be a number, not string"},
		{"no uri", "textDocument/inlineCompletion", map[string]any{"position": pos(0, 0)}, "textDocument.uri is required"},
		{"not open", "textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": "file:///x"},
			"position": pos(0, 0)}, "document is not open"},
		{"line past the end", "textDocument/inlineCompletion", map[string]any{"textDocument": doc, "position": pos(9, 0)},
			"line 9, but the document has 4 lines"},
		{"bad trigger kind", "textDocument/inlineCompletion", map[string]any{"textDocument": doc, "position": pos(0, 0),
			"context": map[string]any{"triggerKind": 7}}, "triggerKind must be 1"},
		{"reversed range", "textDocument/codeAction", map[string]any{"textDocument": doc, "range": rangeOf(2, 0, 0, 0),
			"context": map[string]any{"diagnostics": []any{}}}, "range ends (0:0) before it starts (2:0)"},
		{"unknown command", "workspace/executeCommand", map[string]any{"command": "nope"}, `unknown command "nope"`},
		{"sign in with a number", "workspace/executeCommand", map[string]any{"command": lspx.CommandSignIn, "arguments": []any{5}},
			"must be a token string"}, // without one: the device sign-in (signin_test.go)
		{"rewrite without instruction", "workspace/executeCommand", map[string]any{"command": lspx.CommandRewrite,
			"arguments": []any{map[string]any{"uri": "file:///work/a.go", "range": rangeOf(0, 0, 0, 3)}}}, "needs an instruction"},
		{"run an unknown action", "workspace/executeCommand", map[string]any{"command": lspx.CommandRunAction,
			"arguments": []any{map[string]any{"uri": "file:///work/a.go", "range": rangeOf(0, 0, 0, 3), "kind": "x"}}}, "unknown code action kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, c.call(tt.method, tt.params), -32602, tt.want)
		})
	}
}

func TestMalformedInput(t *testing.T) {
	c := newClient(t, Config{}, nil)
	c.initialize(map[string]any{}, nil)
	tests := []struct {
		body string
		code int
		id   string
	}{
		{`{"jsonrpc":"2.0","id":1,`, -32700, "null"},
		{`not json`, -32700, "null"},
		{`{"jsonrpc":"1.0","id":7,"method":"x"}`, -32600, "7"},
		{`[{"jsonrpc":"2.0","id":1,"method":"x"}]`, -32600, "null"},
		{`{"jsonrpc":"2.0","id":{"a":1},"method":"x"}`, -32600, "null"},
	}
	for _, tt := range tests {
		c.sendRaw([]byte(tt.body))
		m := c.wait(c.waitFor(tt.id))
		if m.Error == nil || m.Error.Code != tt.code {
			t.Errorf("%s: reply %+v, want code %d", tt.body, m, tt.code)
		}
	}
	// The server still answers.
	var st lspx.Status
	c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandStatus}, &st)
}

// waitFor returns a channel for the response with the given raw id.
func (c *client) waitFor(rawID string) <-chan message {
	ch := make(chan message, 1)
	c.mu.Lock()
	if m, ok := c.early[rawID]; ok {
		delete(c.early, rawID)
		ch <- m
	} else {
		c.waiters[rawID] = ch
	}
	c.mu.Unlock()
	return ch
}

// TestConcurrentDispatch: a slow inline completion blocks neither a fast one, nor other
// requests, nor document changes; it ends when cancelled.
func TestConcurrentDispatch(t *testing.T) {
	slowStarted := make(chan struct{})
	eng := &fakeEngine{complete: func(ctx context.Context, in complete.Input) (complete.Result, error) {
		if in.DocKey == "file:///work/slow.go" {
			close(slowStarted)
			<-ctx.Done()
			return complete.Result{}, ctx.Err()
		}
		return complete.Result{Items: []complete.Item{{InsertText: "fast", Start: in.Offset, End: in.Offset, ID: "f1"}}}, nil
	}}
	c := newClient(t, Config{Engine: eng, Backend: &fakeBackend{}}, nil)
	c.initialize(inlineCaps, nil)
	c.open("file:///work/slow.go", "go", "package slow\n")
	c.open("file:///work/fast.go", "go", "package fast\n")
	slow := c.start(1000, "textDocument/inlineCompletion", map[string]any{
		"textDocument": map[string]any{"uri": "file:///work/slow.go"}, "position": pos(1, 0), "context": map[string]any{"triggerKind": 2}})
	<-slowStarted
	c.notify("textDocument/didChange", map[string]any{"textDocument": map[string]any{"uri": "file:///work/fast.go", "version": 2},
		"contentChanges": []any{map[string]any{"range": rangeOf(1, 0, 1, 0), "text": "\n"}}})
	var list protocol.InlineCompletionList
	c.result("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": "file:///work/fast.go"},
		"position": pos(2, 0), "context": map[string]any{"triggerKind": 1}}, &list)
	if len(list.Items) != 1 || list.Items[0].InsertText != protocol.String("fast") {
		t.Fatalf("fast completion = %+v", list)
	}
	select {
	case m := <-slow:
		t.Fatalf("slow request answered early: %+v", m)
	default:
	}
	c.notify("$/cancelRequest", map[string]any{"id": 1000})
	wantError(t, c.wait(slow), -32800, "cancelled")
}

// TestCancel cancels requests by numeric and string ids: the reply is RequestCancelled and
// the engine's context (hence the backend stream) is cancelled.
func TestCancel(t *testing.T) {
	tests := []struct {
		name     string
		id       any
		cancelID string // as spelled in $/cancelRequest
	}{
		{"number", 7, "7"},
		{"number spelled as a float", 8, "8.0"},
		{"string", "req-7", `"req-7"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started, ended := make(chan struct{}), make(chan error, 1)
			eng := &fakeEngine{complete: func(ctx context.Context, in complete.Input) (complete.Result, error) {
				close(started)
				<-ctx.Done()
				ended <- ctx.Err()
				return complete.Result{}, ctx.Err()
			}}
			c := newClient(t, Config{Engine: eng, Backend: &fakeBackend{}}, nil)
			c.initialize(inlineCaps, nil)
			c.open("file:///work/a.go", "go", "package a\n")
			ch := c.start(tt.id, "textDocument/inlineCompletion", map[string]any{
				"textDocument": map[string]any{"uri": "file:///work/a.go"}, "position": pos(1, 0)})
			<-started
			// A cancel for another id changes nothing.
			c.sendRaw([]byte(`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":99}}`))
			c.sendRaw([]byte(`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":` + tt.cancelID + `}}`))
			wantError(t, c.wait(ch), -32800, "cancelled")
			if err := <-ended; !errors.Is(err, context.Canceled) {
				t.Errorf("engine context ended with %v", err)
			}
		})
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
