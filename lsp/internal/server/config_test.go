package server

import (
	"go.lsp.dev/protocol"

	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
	wire "github.com/codingplan/codingplan/shared"
)

func TestSettingsLive(t *testing.T) {
	rec := &recorder{}
	backend := &fakeBackend{}
	c := newClient(t, Config{Engine: rec.engine(), Backend: backend, Env: config.Env{Token: "envtok"}}, nil)
	var mu sync.Mutex
	pulled := any(nil) // what workspace/configuration answers
	c.onRequest = func(m message) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		if m.Method == "workspace/configuration" {
			return []any{pulled}, nil
		}
		return nil, nil
	}
	c.initialize(inlineCaps, map[string]any{config.Section: map[string]any{"backendUrl": "wss://init:1/v1/ws", "model": "m1"}})
	c.serverRequest("workspace/configuration") // the first pull, after initialized; it answers null
	c.note(lspx.MethodStatus)
	uri := "file:///work/a.go"
	c.open(uri, "go", "x")
	model := func() string {
		t.Helper()
		c.result("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": uri}, "position": pos(0, 0)}, nil)
		return rec.input().Settings.Model
	}
	if got := model(); got != "m1" {
		t.Errorf("model from initializationOptions = %q", got)
	}
	if tok, url := backend.last(); tok != "envtok" || url != "wss://init:1/v1/ws" {
		t.Errorf("backend got token %q url %q, want the environment's token and the options' URL", string(tok), url)
	}

	// Pushed settings apply at once, over initializationOptions.
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{
		config.Section: map[string]any{"model": "m2", "token": "settok", "enable": false}}})
	var st lspx.Status
	decode(t, c.note(lspx.MethodStatus).Params, &st)
	if st.Enabled || st.State != lspx.StateDisabled {
		t.Errorf("status after enable=false: %+v", st)
	}
	var list protocol.InlineCompletionList
	c.result("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": uri}, "position": pos(0, 0)}, &list)
	if len(list.Items) != 0 {
		t.Errorf("disabled, yet %d items", len(list.Items))
	}
	if tok, url := backend.last(); tok != "settok" || url != "wss://init:1/v1/ws" {
		t.Errorf("backend got token %q url %q", string(tok), url)
	}

	// A notification without our settings makes the server pull them.
	mu.Lock()
	pulled = map[string]any{"model": "m3", "enable": true}
	mu.Unlock()
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": nil})
	c.serverRequest("workspace/configuration")
	decode(t, c.note(lspx.MethodStatus).Params, &st)
	if !st.Enabled {
		t.Errorf("status after the pull: %+v", st)
	}
	if got := model(); got != "m3" {
		t.Errorf("model after the pull = %q, want m3", got)
	}
	if tok, _ := backend.last(); tok != "envtok" {
		t.Errorf("token after the pull = %q, want the environment's again", string(tok))
	}

	// Bad values are reported; the good ones still apply.
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{
		config.Section: map[string]any{"maxTokens": -1, "model": "m4"}}})
	msg := c.note("window/showMessage")
	if !strings.Contains(string(msg.Params), "maxTokens: must be a whole number") {
		t.Errorf("showMessage = %s", msg.Params)
	}
	if got := model(); got != "m4" {
		t.Errorf("model = %q, want m4", got)
	}
}

func TestCommands(t *testing.T) {
	eng := &fakeEngine{}
	backend := &fakeBackend{}
	c := newClient(t, Config{Engine: eng, Backend: backend}, nil)
	c.initialize(inlineCaps, map[string]any{"token": "fromsettings"})
	c.note(lspx.MethodStatus)
	exec := func(cmd string, args ...any) json.RawMessage {
		t.Helper()
		p := map[string]any{"command": cmd}
		if args != nil {
			p["arguments"] = args
		}
		m := c.call("workspace/executeCommand", p)
		if m.Error != nil {
			t.Fatalf("%s: %s", cmd, m.Error.Message)
		}
		return m.Result
	}
	var st lspx.Status
	decode(t, exec(lspx.CommandStatus), &st)
	if st.State != lspx.StateReady || !st.Enabled {
		t.Errorf("status = %+v", st)
	}
	for _, step := range []struct {
		cmd  string
		want bool
	}{{lspx.CommandDisable, false}, {lspx.CommandToggle, true}, {lspx.CommandToggle, false}, {lspx.CommandEnable, true}} {
		var r lspx.EnabledResult
		decode(t, exec(step.cmd), &r)
		decode(t, c.note(lspx.MethodStatus).Params, &st)
		if r.Enabled != step.want || st.Enabled != step.want {
			t.Errorf("%s: enabled %v, status %+v; want %v", step.cmd, r.Enabled, st, step.want)
		}
	}

	exec(lspx.CommandSignIn, " tok2 ")
	if tok, _ := backend.last(); tok != "tok2" {
		t.Errorf("after signIn the token is %q", string(tok))
	}
	exec(lspx.CommandSignOut)
	if tok, _ := backend.last(); tok != "" {
		t.Errorf("after signOut the token is %q", string(tok))
	}
	exec(lspx.CommandRetry)
	backend.mu.Lock()
	retries := backend.retries
	backend.mu.Unlock()
	if retries != 1 {
		t.Errorf("codingplan.retry: %d retries, want 1", retries)
	}
	// Unrelated settings changes keep the sign-out; a new token in the settings replaces it.
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"token": "fromsettings", "model": "x"}})
	exec(lspx.CommandStatus)
	if tok, _ := backend.last(); tok != wire.Secret("") {
		t.Errorf("after an unrelated change the token is %q", string(tok))
	}
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"token": "newtoken"}})
	exec(lspx.CommandStatus)
	if tok, _ := backend.last(); tok != "newtoken" {
		t.Errorf("after a token change the token is %q", string(tok))
	}

	exec(lspx.CommandAcceptCompletion, lspx.AcceptCompletionArgs{URI: "file:///a", ID: "cp1"})
	item := map[string]any{"insertText": "x", "command": map[string]any{"title": "t", "command": lspx.CommandAcceptCompletion,
		"arguments": []any{map[string]any{"uri": "file:///a", "id": "cp1"}}}}
	c.notify(lspx.MethodDidShowCompletion, map[string]any{"item": item})
	c.notify(lspx.MethodDidPartiallyAcceptCompletion, map[string]any{"item": item, "acceptedLength": 3})
	exec(lspx.CommandStatus) // after the notifications
	if shown, accepted, partial := eng.counts(); shown != 1 || accepted != 1 || partial != 1 {
		t.Errorf("counts = %d shown, %d accepted, %d partial; want 1 each", shown, accepted, partial)
	}
}

func TestBackendStatusPush(t *testing.T) {
	backend := &fakeBackend{}
	s := New(Config{Backend: backend}, nil)
	c := newClientFor(t, s)
	backend.push(statusOf("connecting")) // before initialize: not sent
	c.initialize(map[string]any{}, nil)
	var st lspx.Status
	decode(t, c.note(lspx.MethodStatus).Params, &st)
	if st.State != lspx.StateReady {
		t.Errorf("first status = %+v", st)
	}
	backend.push(statusOf(lspx.StateRateLimited))
	decode(t, c.note(lspx.MethodStatus).Params, &st)
	if st.State != lspx.StateRateLimited || st.RetryAfterMS != 1500 || st.Plan == nil || st.Plan.Concurrency != 3 {
		t.Errorf("pushed status = %+v", st)
	}
}

func decode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

// TestBackendURLRefused: a backendUrl that is not ws:// or wss:// is reported and changes
// nothing: the URL in use stays, and before any valid one the server connects nowhere (or to
// the environment's URL), never to the default.
func TestBackendURLRefused(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		layers  []string // initializationOptions' backendUrl, then each pushed one
		wantURL string
	}{
		{"invalid at start: none", "", []string{"http://attacker.example/v1/ws"}, ""},
		{"invalid at start: the environment's", "wss://env.example/v1/ws", []string{"not a url"}, "wss://env.example/v1/ws"},
		{"invalid push keeps the options'", "", []string{"wss://init:1/v1/ws", "http://init:1/v1/ws"}, "wss://init:1/v1/ws"},
		{"invalid push keeps the last valid push", "", []string{"wss://init:1/v1/ws", "wss://b.example/v1/ws", "ftp://b"}, "wss://b.example/v1/ws"},
		{"no scheme", "", []string{"wss://a.example/v1/ws", "a.example:8787/v1/ws"}, "wss://a.example/v1/ws"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := &fakeBackend{}
			c := newClient(t, Config{Backend: backend, Env: config.Env{Token: "tok", BackendURL: tt.env}}, nil)
			c.initialize(inlineCaps, map[string]any{config.Section: map[string]any{"backendUrl": tt.layers[0]}})
			warnings := 0
			for i, u := range tt.layers {
				if i > 0 {
					c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{
						config.Section: map[string]any{"backendUrl": u}}})
				}
				if !strings.HasPrefix(u, "ws") {
					var msg protocol.ShowMessageParams
					decode(t, c.note("window/showMessage").Params, &msg)
					if !strings.Contains(msg.Message, "backendUrl") {
						t.Errorf("warning %q does not name backendUrl", msg.Message)
					}
					warnings++
				}
			}
			c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandStatus}, nil) // after every push
			if _, url := backend.last(); url != tt.wantURL {
				t.Errorf("backend URL = %q, want %q", url, tt.wantURL)
			}
			if warnings == 0 {
				t.Error("no invalid layer in the case")
			}
		})
	}
}
