package lspx

import (
	"encoding/json"
	"testing"

	"go.lsp.dev/protocol"
)

// TestShapes pins the JSON of the messages editors mirror.
func TestShapes(t *testing.T) {
	r := protocol.Range{End: protocol.Position{Character: 2}}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"status", Status{State: StateReady, Message: "connected", Enabled: true},
			`{"state":"ready","message":"connected","enabled":true}`},
		{"status with plan", Status{State: StateRateLimited, Message: "m", RetryAfterMS: 1200,
			Plan: &PlanStatus{Name: "pro", Concurrency: 3, InUse: 3}},
			`{"state":"rateLimited","message":"m","retryAfterMs":1200,"plan":{"name":"pro","concurrency":3,"inUse":3},"enabled":false}`},
		{"inline item", InlineCompletionList{Items: []InlineCompletionItem{{InsertText: "x", Range: &r,
			Command: &protocol.Command{Title: "t", Command: CommandAcceptCompletion, Arguments: []any{AcceptCompletionArgs{URI: "u", ID: "i"}}}}}},
			`{"items":[{"insertText":"x","range":{"start":{"line":0,"character":0},"end":{"line":0,"character":2}},"command":{"title":"t","command":"codingplan.acceptCompletion","arguments":[{"uri":"u","id":"i"}]}}]}`},
		{"progress", ProgressParams{Token: json.RawMessage(`"codingplan-1"`), Value: protocol.WorkDoneProgressEnd{Kind: "end"}},
			`{"token":"codingplan-1","value":{"kind":"end"}}`},
		{"enabled", EnabledResult{}, `{"enabled":false}`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.v)
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: %s, %v\nwant %s", tt.name, got, err, tt.want)
		}
	}
}

// TestInlineParams decodes a request as VS Code and Neovim send it.
func TestInlineParams(t *testing.T) {
	var p InlineCompletionParams
	raw := `{"textDocument":{"uri":"file:///a.go"},"position":{"line":3,"character":4},
		"context":{"triggerKind":1,"selectedCompletionInfo":{"range":{"start":{"line":3,"character":2},"end":{"line":3,"character":4}},"text":"Println"}},
		"workDoneToken":7}`
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	sel := p.Context.SelectedCompletionInfo
	if p.TextDocument.URI != "file:///a.go" || p.Position.Line != 3 || p.Context.TriggerKind != InlineCompletionTriggerInvoked ||
		sel == nil || sel.Text != "Println" || sel.Range.Start.Character != 2 || string(p.WorkDoneToken) != "7" {
		t.Errorf("decoded %+v", p)
	}
}
