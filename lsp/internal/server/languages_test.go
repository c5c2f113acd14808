package server

import (
	"testing"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

// TestEnableByLanguage: the enable setting as an object turns completions off for the
// languages it names false (from each document's languageId), and "*" covers the rest; the
// enable command turns on what "*" left off, but not a language named false.
func TestEnableByLanguage(t *testing.T) {
	c := newClient(t, Config{Engine: (&recorder{}).engine(), Backend: &fakeBackend{}}, nil)
	c.initialize(inlineCaps, map[string]any{config.Section: map[string]any{
		"enable": map[string]any{"*": false, "go": true, "plaintext": false}}})
	docs := map[string]string{"go": "file:///w/a.go", "python": "file:///w/a.py", "plaintext": "file:///w/a.txt"}
	for lang, uri := range docs {
		c.open(uri, lang, "x")
	}
	items := func(lang string) int {
		t.Helper()
		var list protocol.InlineCompletionList
		c.result("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": docs[lang]},
			"position": pos(0, 0), "context": map[string]any{"triggerKind": 2}}, &list)
		return len(list.Items)
	}
	for _, step := range []struct {
		command string // run first, when set
		want    map[string]int
	}{
		{"", map[string]int{"go": 1, "python": 0, "plaintext": 0}},
		{lspx.CommandDisable, map[string]int{"go": 0, "python": 0, "plaintext": 0}},
		{lspx.CommandEnable, map[string]int{"go": 1, "python": 1, "plaintext": 0}},
		{lspx.CommandToggle, map[string]int{"go": 0, "python": 0, "plaintext": 0}},
	} {
		if step.command != "" {
			c.result("workspace/executeCommand", map[string]any{"command": step.command}, nil)
		}
		for lang, want := range step.want {
			if got := items(lang); got != want {
				t.Errorf("after %q: %s got %d items, want %d", step.command, lang, got, want)
			}
		}
	}
	// A new setting starts over from it: the boolean form still works.
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{config.Section: map[string]any{"enable": true}}})
	for lang := range docs {
		if got := items(lang); got != 1 {
			t.Errorf("enable true: %s got %d items", lang, got)
		}
	}
}

// TestManualMode: with automatic off, inline completions the editor asks for while typing
// get no items, and those the user invokes work.
func TestManualMode(t *testing.T) {
	c := newClient(t, Config{Engine: (&recorder{}).engine(), Backend: &fakeBackend{}}, nil)
	c.initialize(inlineCaps, map[string]any{config.Section: map[string]any{"automatic": false}})
	uri := "file:///w/a.go"
	c.open(uri, "go", "x")
	items := func(kind int) int {
		t.Helper()
		var list protocol.InlineCompletionList
		c.result("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": uri},
			"position": pos(0, 0), "context": map[string]any{"triggerKind": kind}}, &list)
		return len(list.Items)
	}
	if got := items(int(protocol.InlineCompletionTriggerKindAutomatic)); got != 0 {
		t.Errorf("manual mode: an automatic request got %d items", got)
	}
	if got := items(int(protocol.InlineCompletionTriggerKindInvoked)); got != 1 {
		t.Errorf("manual mode: an invoked request got %d items, want 1", got)
	}
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{config.Section: map[string]any{"automatic": true}}})
	if got := items(int(protocol.InlineCompletionTriggerKindAutomatic)); got != 1 {
		t.Errorf("automatic mode: an automatic request got %d items, want 1", got)
	}
}
