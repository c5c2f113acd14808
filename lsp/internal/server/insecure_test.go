package server

import (
	"strings"
	"testing"

	"go.lsp.dev/protocol"

	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
	"github.com/codingplan/codingplan/lsp/internal/remote"
)

// TestInsecureBackendWarned: a ws:// backendUrl to another machine is told to the user, who
// learns the setting that accepts it; the connection gets the transport settings (it refuses
// to dial, see remote's TestInsecureRefused).
func TestInsecureBackendWarned(t *testing.T) {
	backend := &fakeBackend{}
	c := newClient(t, Config{Backend: backend, Env: config.Env{Token: "tok"}}, nil)
	c.initialize(inlineCaps, map[string]any{config.Section: map[string]any{"backendUrl": "ws://backend.example/v1/ws", "caFile": "/etc/ca.pem"}})
	var msg protocol.ShowMessageParams
	decode(t, c.note("window/showMessage").Params, &msg)
	if !strings.Contains(msg.Message, "allowInsecureBackend") || msg.Type != protocol.MessageTypeWarning {
		t.Errorf("warning %+v does not name allowInsecureBackend", msg)
	}
	c.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{
		config.Section: map[string]any{"backendUrl": "ws://backend.example/v1/ws", "allowInsecureBackend": true}}})
	c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandStatus}, nil)
	backend.mu.Lock()
	defer backend.mu.Unlock()
	want := []remote.Transport{{CAFile: "/etc/ca.pem"}, {AllowInsecure: true, CAFile: "/etc/ca.pem"}}
	if got := backend.transports; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("transports %+v, want %+v", got, want)
	}
}
