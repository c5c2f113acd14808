package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.lsp.dev/jsonrpc2"

	"github.com/codingplan/codingplan/lsp/internal/document"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
)

// TestReplyIDs: a reply carries the request's id as the client spelled it, whatever its kind.
func TestReplyIDs(t *testing.T) {
	c := newClient(t, Config{}, nil)
	c.initialize(map[string]any{}, nil)
	tests := []struct {
		id   string // raw JSON
		want string // what the reply must hold
	}{
		{`7`, `"id":7,`},
		{`99999999999`, `"id":99999999999,`}, // over int32, which jsonrpc2.ID was
		{`"abc"`, `"id":"abc",`},
		{`"a\"b"`, `"id":"a\"b",`},
		{`"é"`, `"id":"é",`},
	}
	for _, tt := range tests {
		c.sendRaw([]byte(`{"jsonrpc":"2.0","id":` + tt.id + `,"method":"workspace/executeCommand","params":{"command":"` + lspx.CommandStatus + `"}}`))
		m := c.wait(c.waitFor(tt.id))
		if m.Error != nil {
			t.Fatalf("id %s: error %+v", tt.id, m.Error)
		}
		raw, _ := json.Marshal(m)
		if !strings.Contains(string(raw), tt.want) {
			t.Errorf("id %s: reply %s, want it to hold %s", tt.id, raw, tt.want)
		}
	}
}

// TestErrorMapping: errors map once to the LSP error a client gets.
func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code jsonrpc2.Code
		msg  string
	}{
		{"jsonrpc error", invalidParams("bad %q", "x"), jsonrpc2.InvalidParams, `bad "x"`},
		{"plain error", errors.New("it broke"), lspx.RequestFailed, "it broke"},
		{"position", fmt.Errorf("x: %w", document.ErrPosition), jsonrpc2.InvalidParams, "x: " + document.ErrPosition.Error()},
		{"server stopped it", context.Canceled, lspx.ServerCancelled, "the server stopped the request"},
	}
	for _, tt := range tests {
		e := rpcError(tt.err)
		if e.Code != tt.code || e.Message != tt.msg {
			t.Errorf("%s: %d %q, want %d %q", tt.name, e.Code, e.Message, tt.code, tt.msg)
		}
	}
}

// TestCallErrorResponse: the client's error answer to a request of the server's comes back to
// the caller as an error with the client's message.
func TestCallErrorResponse(t *testing.T) {
	b := newModelBackend("\treturn a + b")
	c := newClient(t, Config{Backend: b}, nil)
	c.onRequest = func(m message) (any, error) {
		if m.Method == "workspace/applyEdit" {
			return nil, errors.New("the file is read-only")
		}
		return nil, nil
	}
	c.initialize(map[string]any{"workspace": map[string]any{"applyEdit": true}}, nil)
	c.open("file:///work/a.go", "go", goSource)
	c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandRunAction, "arguments": []any{
		map[string]any{"uri": "file:///work/a.go", "range": rangeOf(3, 0, 3, 13), "kind": lspx.KindSimplify}}}, nil)
	var msg struct {
		Message string `json:"message"`
	}
	decode(t, c.note("window/showMessage").Params, &msg)
	if want := "the edit was not applied: the editor refused it (the file is read-only)"; !strings.Contains(msg.Message, want) {
		t.Errorf("showMessage = %q, want %q", msg.Message, want)
	}
}
