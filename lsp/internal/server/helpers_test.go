package server

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

func TestKindWanted(t *testing.T) {
	tests := []struct {
		only []protocol.CodeActionKind
		kind string
		want bool
	}{
		{nil, lspx.KindFix, true},
		{[]protocol.CodeActionKind{"quickfix"}, lspx.KindFix, true},
		{[]protocol.CodeActionKind{"refactor"}, lspx.KindFix, false},
		{[]protocol.CodeActionKind{"refactor"}, lspx.KindSimplify, true},
		{[]protocol.CodeActionKind{"refactor.rewrite"}, lspx.KindExplain, false},
		{[]protocol.CodeActionKind{"refactor.re"}, lspx.KindSimplify, false},
		{[]protocol.CodeActionKind{lspx.KindTests}, lspx.KindTests, true},
	}
	for _, tt := range tests {
		if got := kindWanted(tt.kind, tt.only); got != tt.want {
			t.Errorf("kindWanted(%s, %v) = %v", tt.kind, tt.only, got)
		}
	}
}

func TestURIPath(t *testing.T) {
	for uri, want := range map[string]string{
		"file:///home/u/p/a.go":     "/home/u/p/a.go",
		"file:///home/u/p/":         "/home/u/p",
		"file:///C:/src/x%20y.go":   "/C:/src/x y.go",
		"untitled:Untitled-1":       "Untitled-1",
		"vscode-notebook-cell:/a/b": "b",
		"file://host/w/a.go":        "/w/a.go", // not the fast path: a host
		"file:///w/a.go?x#y":        "/w/a.go",
	} {
		if got := uriPath(uri); got != want {
			t.Errorf("uriPath(%s) = %q, want %q", uri, got, want)
		}
	}
}

// TestTrace checks the trace setting: nothing of the protocol by default, messages with
// text redacted, everything only when content is asked for by name.
func TestTrace(t *testing.T) {
	const canary = "CANARY_7f3a_code"
	for _, mode := range []string{config.TraceOff, config.TraceMessages, config.TraceContent} {
		t.Run(mode, func(t *testing.T) {
			var buf syncBuffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := newClient(t, Config{Engine: &fakeEngine{}, Backend: &fakeBackend{}}, log)
			c.initialize(inlineCaps, map[string]any{"trace": mode})
			c.open("file:///work/a.go", "go", "x := \""+canary+"\"")
			c.result("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": "file:///work/a.go"},
				"position": pos(0, 3)}, nil)
			c.exit(true)
			logs := buf.String()
			hasCanary := strings.Contains(logs, canary)
			traced := strings.Contains(logs, "textDocument/didOpen")
			switch mode {
			case config.TraceOff:
				if hasCanary || traced {
					t.Errorf("trace off logged the protocol:\n%s", logs)
				}
			case config.TraceMessages:
				if hasCanary || !traced || !strings.Contains(logs, "[redacted]") || !strings.Contains(logs, "textDocument/inlineCompletion") {
					t.Errorf("trace messages: canary %v, traced %v:\n%s", hasCanary, traced, logs)
				}
			case config.TraceContent:
				if !hasCanary {
					t.Errorf("trace content did not log the content:\n%s", logs)
				}
			}
		})
	}
}

func TestRedactJSON(t *testing.T) {
	in := `{"jsonrpc":"2.0","id":"r1","method":"m","params":{"textDocument":{"uri":"file:///a","text":"secret"},"position":{"line":3},"list":["a",1,true,null]}}`
	got := redactJSON([]byte(in))
	for _, want := range []string{`"method":"m"`, `"uri":"file:///a"`, `"text":"[redacted]"`, `"line":3`, `"id":"r1"`, `["[redacted]",1,true,null]`} {
		if !strings.Contains(got, want) {
			t.Errorf("redactJSON = %s, lacks %s", got, want)
		}
	}
	if strings.Contains(got, "secret") {
		t.Errorf("redactJSON kept the text: %s", got)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
