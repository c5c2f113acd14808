package server

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/codingplan/codingplan/lsp/internal/complete"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

func TestCompletionFallback(t *testing.T) {
	var calls atomic.Int32
	eng := &fakeEngine{complete: func(_ context.Context, in complete.Input) (complete.Result, error) {
		calls.Add(1)
		return complete.Result{Items: []complete.Item{{InsertText: "ntln(x)\n\treturn", Start: in.Offset, End: in.Offset + 1, ID: "c9"}}}, nil
	}}
	t.Run("client without inline completion", func(t *testing.T) {
		c := newClient(t, Config{Engine: eng, Backend: &fakeBackend{}}, nil)
		c.initialize(map[string]any{}, nil)
		c.open("file:///work/a.go", "go", "\tfmt.Pri)\n")
		var list struct {
			IsIncomplete bool `json:"isIncomplete"`
			Items        []struct {
				Label      string   `json:"label"`
				Kind       int      `json:"kind"`
				FilterText string   `json:"filterText"`
				SortText   string   `json:"sortText"`
				TextEdit   textEdit `json:"textEdit"`
				Command    struct {
					Command string `json:"command"`
				} `json:"command"`
			} `json:"items"`
		}
		c.result("textDocument/completion", map[string]any{"textDocument": map[string]any{"uri": "file:///work/a.go"},
			"position": pos(0, 8)}, &list)
		if !list.IsIncomplete || len(list.Items) != 1 {
			t.Fatalf("list = %+v", list)
		}
		it := list.Items[0]
		wantEdit := textEdit{Range: rangeOf(0, 5, 0, 9), NewText: "Println(x)\n\treturn"}
		if it.Label != "✦ codingplan: Println(x)" || it.FilterText != "Println(x)\n\treturn" || it.SortText != "0" ||
			it.Kind != 1 || string(mustJSON(it.TextEdit)) != string(mustJSON(wantEdit)) || it.Command.Command != lspx.CommandAcceptCompletion {
			t.Errorf("item = %+v\nwant edit %s", it, mustJSON(wantEdit))
		}
	})
	t.Run("client with inline completion", func(t *testing.T) {
		before := calls.Load()
		c := newClient(t, Config{Engine: eng, Backend: &fakeBackend{}}, nil)
		c.initialize(inlineCaps, nil)
		c.open("file:///work/a.go", "go", "fmt.Pri")
		m := c.call("textDocument/completion", map[string]any{"textDocument": map[string]any{"uri": "file:///work/a.go"}, "position": pos(0, 7)})
		if m.Error != nil || !strings.Contains(string(m.Result), `"items":[]`) || strings.Contains(string(m.Result), `"isIncomplete":true`) {
			t.Errorf("result = %s, want an empty complete list", m.Result)
		}
		if calls.Load() != before {
			t.Error("the engine was asked")
		}
	})
}

func TestWordStartAndLabel(t *testing.T) {
	words := []struct {
		text string
		off  int
		want int
	}{{"fmt.Pri", 7, 4}, {"x := héllo", 11, 5}, {"a b", 2, 2}, {"", 0, 0}, {"_id$2", 5, 0}}
	for _, tt := range words {
		if got := wordStart(tt.text, tt.off); got != tt.want {
			t.Errorf("wordStart(%q, %d) = %d, want %d", tt.text, tt.off, got, tt.want)
		}
	}
	labels := []struct{ text, want string }{
		{"\n\n  return x\n}", labelPrefix + "return x"},
		{strings.Repeat("é", 70), labelPrefix + strings.Repeat("é", 60) + "…"},
	}
	for _, tt := range labels {
		if got := label(tt.text); got != tt.want {
			t.Errorf("label(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
