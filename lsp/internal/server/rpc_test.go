package server

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"go.lsp.dev/jsonrpc2"

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

// TestReplyEncoding: results and errors are encoded once, as valid JSON-RPC.
func TestReplyEncoding(t *testing.T) {
	tests := []struct {
		name   string
		result any
		err    error
		want   string
	}{
		{"null result", nil, nil, `{"jsonrpc":"2.0","id":3,"result":null}`},
		{"object", map[string]int{"a": 1}, nil, `{"jsonrpc":"2.0","id":3,"result":{"a":1}}`},
		{"raw", json.RawMessage(` {"b" : 2} `), nil, `{"jsonrpc":"2.0","id":3,"result":{"b":2}}`},
		{"error", "ignored", invalidParams("bad %q", "x"), `{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"bad \"x\""}}`},
		{"plain error", nil, errors.New("it broke"), `{"jsonrpc":"2.0","id":3,"error":{"code":-32803,"message":"it broke"}}`},
		{"unencodable", func() {}, nil, `{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"cannot encode the result"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			conn := newRPCConn(&stream{out: &out})
			var rpcErr *jsonrpc2.Error
			if tt.err != nil {
				rpcErr = rpcError(tt.err)
			}
			if err := conn.reply(json.RawMessage("3"), tt.result, rpcErr); err != nil {
				t.Fatal(err)
			}
			head, body, ok := strings.Cut(out.String(), "\r\n\r\n")
			if !ok || head != "Content-Length: "+strconv.Itoa(len(body)) {
				t.Fatalf("frame %q", out.String())
			}
			if body != tt.want {
				t.Errorf("got  %s\nwant %s", body, tt.want)
			}
			if !json.Valid([]byte(body)) {
				t.Errorf("not JSON: %s", body)
			}
		})
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
