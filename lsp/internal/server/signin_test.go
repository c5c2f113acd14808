package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
	wire "github.com/codingplan/codingplan/shared"
)

// TestRefusedTokenToldOnce: a token of the user's (here given to codingplan.signIn) that the
// backend refuses cannot be refreshed: the user is told once, with a Sign in action, however
// often the connection reports the refusal; a new token resets that.
func TestRefusedTokenToldOnce(t *testing.T) {
	fb := &fakeBackend{}
	c := newClient(t, Config{Backend: fb}, nil)
	c.initialize(map[string]any{}, map[string]any{"codingplan": map[string]any{"accountsUrl": "http://127.0.0.1:1"}})
	c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandSignIn, "arguments": []any{"tok"}}, nil)

	fb.refuse("tok", wire.CodeTokenExpired)
	fb.refuse("tok", wire.CodeTokenExpired)
	fb.refuse("tok", wire.CodeUnauthorized)
	m := c.serverRequest("window/showMessageRequest")
	var p lspx.ShowMessageRequestParams
	if err := json.Unmarshal(m.Params, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Actions) != 1 || p.Actions[0].Title != lspx.ActionSignIn || !strings.Contains(p.Message, "expired") {
		t.Errorf("told %+v, want the expiry and a Sign in action", p)
	}
	// The status request below is answered after anything the refusals started was sent.
	c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandStatus}, nil)
	select {
	case m := <-c.requests:
		t.Errorf("a second request: %s %s", m.Method, m.Params)
	case <-time.After(50 * time.Millisecond):
	}

	// A refusal of a token that is not the current one is old news.
	c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandSignIn, "arguments": []any{"tok2"}}, nil)
	fb.refuse("tok", wire.CodeUnauthorized)
	fb.refuse("tok2", wire.CodeUnauthorized)
	m = c.serverRequest("window/showMessageRequest")
	if err := json.Unmarshal(m.Params, &p); err != nil || !strings.Contains(p.Message, "refused") {
		t.Errorf("told %s, want the refusal", m.Params)
	}
}
