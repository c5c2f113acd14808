package lspx

import (
	"testing"

	"go.lsp.dev/protocol"
)

// TestShapes pins the JSON of the messages editors mirror, encoded as the server encodes them.
func TestShapes(t *testing.T) {
	v := int32(4)
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
		{"status with a limited model", Status{State: StateLoading, Message: "m", Enabled: true, Model: "local",
			Unavailable: "no code actions"},
			`{"state":"loading","message":"m","enabled":true,"model":"local","unavailable":"no code actions"}`},
		{"enabled", EnabledResult{}, `{"enabled":false}`},
		{"accept", AcceptCompletionArgs{URI: "u", ID: "i"}, `{"uri":"u","id":"i"}`},
		{"device sign-in", ShowMessageRequestParams{Type: protocol.MessageTypeInfo, Message: "m",
			Actions: []DeviceAction{{Title: ActionCopyAndOpen, UserCode: "WDJB-MJHT", URI: "http://a/device?user_code=WDJB-MJHT"}}},
			`{"type":3,"message":"m","actions":[{"title":"Copy code and open","userCode":"WDJB-MJHT","uri":"http://a/device?user_code=WDJB-MJHT"}]}`},
		{"run action", RunActionArgs{URI: "u", Kind: KindFix, Version: &v},
			`{"uri":"u","range":{"start":{"line":0,"character":0},"end":{"line":0,"character":0}},"kind":"quickfix.codingplan.fix","version":4}`},
	}
	for _, a := range []AcceptCompletionArgs{{URI: "u", ID: "i"}, {URI: "file:///a \"b\"\n", ID: "é<>&"}} {
		want, err := protocol.Marshal(a)
		if got := a.AppendJSON(nil); err != nil || string(got) != string(want) {
			t.Errorf("AppendJSON = %s, want %s (%v)", got, want, err)
		}
	}
	for _, tt := range tests {
		got, err := protocol.Marshal(tt.v)
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: %s, %v\nwant %s", tt.name, got, err, tt.want)
		}
	}
}

// TestShownParams decodes Copilot's didShowCompletion as editors send it.
func TestShownParams(t *testing.T) {
	var p DidShowCompletionParams
	raw := `{"item":{"insertText":"x","command":{"title":"t","command":"codingplan.acceptCompletion","arguments":[{"uri":"u","id":"i"}]}}}`
	if err := protocol.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	if p.Item.Command.Command != CommandAcceptCompletion || len(p.Item.Command.Arguments) != 1 {
		t.Errorf("decoded %+v", p)
	}
}
