package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/valkey-io/valkey-go"

	wire "github.com/codingplan/codingplan/shared"
)

// wsRequests sends canaries straight to the backend over the websocket, as any client of the
// protocol may: in every text field of completion and edit requests to every provider kind,
// in malformed and oversized frames, in a request cancelled while the model runs, and as
// invalid tokens.
func wsRequests(ctx context.Context, t *testing.T, s *system, token string, text, bad, local, badToken canary) {
	t.Helper()
	ws := dialWS(ctx, t, s.wsURL, token)
	v := wire.Text(text.value)
	completion := &wire.Completion{
		Prefix:   "package calc\n\n// " + v + "\nfunc f() string {\n\tx := \"" + v + "\"\n\treturn ",
		Suffix:   "\n}\n// " + v + "\n",
		Language: "go", Path: "calc/f.go",
		Snippets: []wire.Snippet{{Path: "calc/g.go", Text: "var g = `" + v + "`"}},
	}
	edit := &wire.Edit{
		Instruction: "Explain " + v, Selection: "x := \"" + v + "\"", Prefix: "// " + v + "\n", Suffix: "\n// " + v,
		Language: "go", Path: "calc/f.go", Diagnostics: []wire.Text{"declared and not used: " + v},
	}
	lv := wire.Text(local.value)
	localCompletion := &wire.Completion{
		Prefix:   "package calc\n\nfunc " + lv + "(a int) int {\n\treturn a\n}\n\nfunc g() int {\n\tx := " + lv + "(1) + " + lv + "(2)\n\treturn ",
		Language: "go", Path: "calc/local.go",
	}
	stop := []wire.Text{"\n\n\n" + v}
	for i, c := range []struct {
		model string
		req   wire.ClientFrame
		echo  bool // the reply must carry the canary back
		ok    bool // the stream must end with done
	}{
		{model: "test", req: wire.ClientFrame{Op: wire.OpCompletion, Completion: completion, Stop: stop}, ok: true},
		{model: "echo", req: wire.ClientFrame{Op: wire.OpCompletion, Completion: completion, Stop: stop}, echo: true, ok: true},
		{model: "echo", req: wire.ClientFrame{Op: wire.OpEdit, Edit: edit}, echo: true, ok: true},
		{model: "fim-echo", req: wire.ClientFrame{Op: wire.OpCompletion, Completion: completion}, echo: true, ok: true},
		{model: "fim-echo", req: wire.ClientFrame{Op: wire.OpEdit, Edit: edit}, echo: true, ok: true},
		{model: "anthropic-echo", req: wire.ClientFrame{Op: wire.OpCompletion, Completion: completion, Stop: stop}, echo: true, ok: true},
		{model: "anthropic-echo", req: wire.ClientFrame{Op: wire.OpEdit, Edit: edit}, echo: true, ok: true},
		{model: "upstream-400", req: wire.ClientFrame{Op: wire.OpCompletion, Completion: completion}},
		{model: "upstream-500", req: wire.ClientFrame{Op: wire.OpEdit, Edit: edit}},
		{model: "malformed", req: wire.ClientFrame{Op: wire.OpCompletion, Completion: completion}},
		{model: "local", req: wire.ClientFrame{Op: wire.OpCompletion, Completion: localCompletion}, ok: true},
		{model: "local", req: wire.ClientFrame{Op: wire.OpEdit, Edit: edit}},
	} {
		f := c.req
		f.Type, f.ID, f.Model = wire.TypeRequest, "rt-"+c.model+"-"+string(rune('a'+i)), c.model
		out, end := ws.stream(ctx, f)
		switch {
		case c.ok && end.Type != wire.TypeDone:
			t.Errorf("%s %s: ended with %s %s %q, want done", c.model, f.Op, end.Type, end.Code, end.Message)
		case !c.ok && end.Type != wire.TypeError:
			t.Errorf("%s %s: ended with %s, want an error", c.model, f.Op, end.Type)
		case c.echo && !strings.Contains(out, text.value):
			t.Errorf("%s %s: the echoed reply lacks the request's canary (positive control): %q", c.model, f.Op, out)
		}
	}

	// A request cancelled while the model is working on it.
	ws.send(wire.ClientFrame{Type: wire.TypeRequest, ID: "rt-hang", Model: "hang", Op: wire.OpCompletion, Completion: completion})
	if _, err := s.waitEvent(ctx, "start", "hang"); err != nil {
		t.Fatalf("the provider never got the request to cancel: %v", err)
	}
	ws.send(wire.ClientFrame{Type: wire.TypeCancel, ID: "rt-hang"})
	if _, end := ws.read(ctx, "rt-hang"); end.Code != wire.CodeCanceled {
		t.Errorf("cancelled request ended with %s %s, want error canceled", end.Type, end.Code)
	}

	// Malformed frames. The server answers each with bad_request and keeps the connection.
	b := bad.value
	for i, frame := range []string{
		`{"type":"request","id":"rt-bad1","op":"completion","completion":{"prefix":"` + b + `","suffix":"` + b, // cut short
		`{"type":"request","id":"rt-bad2","op":"completion","completion":{"prefix":["` + b + `"]}}`,
		`{"type":"request","id":"rt-bad3","op":"completion","max_tokens":"` + b + `","completion":{"prefix":"` + b + `"}}`,
		`{"type":"request","id":"rt-bad4","op":"edit","edit":{"selection":"` + b + `"}}`,
		`{"type":"request","id":"rt-bad5","op":"` + b + `","completion":{"prefix":"` + b + `"}}`,
		`{"type":"` + b + `","id":"rt-bad6","text":"` + b + `"}`,
		"{\"type\":\"request\",\"id\":\"rt-bad7\",\"op\":\"completion\",\"completion\":{\"prefix\":\"" + b + "\xff\xfe\"}}",
		`{"type":"request","id":"rt-bad8","op":"completion","stop":["","` + b + `"],"completion":{"prefix":"` + b + `"}}`,
		b + ` not JSON at all`,
	} {
		ws.sendRaw([]byte(frame))
		if _, end := ws.read(ctx, ""); end.Type != wire.TypeError || end.Code != wire.CodeBadRequest {
			t.Errorf("malformed frame %d: answered %s %s, want error bad_request", i+1, end.Type, end.Code)
		}
	}
	// An auth frame with an invalid token.
	ws.send(wire.ClientFrame{Type: wire.TypeAuth, Token: wire.Secret(badToken.value)})
	if _, end := ws.read(ctx, ""); end.Type != wire.TypeError && end.Type != "close" {
		t.Errorf("auth with an invalid token: answered %s, want an error or a close", end.Type)
	}
	ws.close()

	// A frame over the limit: too_large, then the server closes the connection.
	ws = dialWS(ctx, t, s.wsURL, token)
	huge := strings.Repeat(string(v)+" ", wire.MaxFrameBytes/len(v)+16)
	ws.send(wire.ClientFrame{Type: wire.TypeRequest, ID: "rt-huge", Op: wire.OpCompletion, Completion: &wire.Completion{Prefix: wire.Text(huge)}})
	if _, end := ws.read(ctx, ""); end.Code != wire.CodeTooLarge {
		t.Errorf("oversized frame: answered %s %s, want error too_large", end.Type, end.Code)
	}
	ws.close()

	// Invalid tokens at the upgrade, in the Authorization header and in the subprotocol, raw
	// and shaped like a JWT.
	jwtLike := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"dev"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x","plan":"pro"}`)) + "." + badToken.value
	for _, tok := range []string{badToken.value, jwtLike} {
		for _, inHeader := range []bool{true, false} {
			h, protos := http.Header{}, []string{wire.Subprotocol}
			if inHeader {
				h.Set("Authorization", "Bearer "+tok)
			} else {
				protos = append(protos, wire.TokenSubprotocolPrefix+tok)
			}
			d := websocket.Dialer{Subprotocols: protos, HandshakeTimeout: 10 * time.Second}
			conn, resp, err := d.DialContext(ctx, s.wsURL, h)
			if err == nil {
				conn.Close()
				t.Errorf("an invalid token was accepted")
				continue
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("invalid token (in header %v): %v, want HTTP 401", inHeader, err)
			}
		}
	}
}

// wsConn is a websocket straight to the backend, speaking shared/ frames. One goroutine uses
// it at a time.
type wsConn struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialWS(ctx context.Context, t *testing.T, url, token string) *wsConn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.DialContext(ctx, url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dialing the backend: %v %s", err, status)
	}
	c := &wsConn{t: t, conn: conn}
	t.Cleanup(func() { conn.Close() })
	if _, hello := c.read(ctx, ""); hello.Type != wire.TypeHello {
		t.Fatalf("first frame is %s, want hello", hello.Type)
	}
	return c
}

func (c *wsConn) send(f wire.ClientFrame) {
	c.t.Helper()
	b, err := wire.Marshal(f)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *wsConn) sendRaw(b []byte) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(deadline))
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("websocket write: %v", err)
	}
}

// stream sends a request and reads its stream to the end.
func (c *wsConn) stream(ctx context.Context, f wire.ClientFrame) (string, wire.ServerFrame) {
	c.send(f)
	return c.read(ctx, f.ID)
}

// read returns the text of stream id's deltas and the frame that ended it: done or error.
// An empty id returns the first frame that is not a delta, queued or pong.
func (c *wsConn) read(ctx context.Context, id string) (string, wire.ServerFrame) {
	c.t.Helper()
	var out strings.Builder
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(deadline)
	}
	_ = c.conn.SetReadDeadline(dl)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return out.String(), wire.ServerFrame{Type: "close", Message: ce.Error()}
			}
			c.t.Fatalf("websocket read: %v", err)
		}
		f, err := wire.DecodeServer(data)
		if err != nil {
			c.t.Fatalf("server frame: %v", err)
		}
		switch {
		case f.Type == wire.TypeDelta && f.ID == id:
			out.WriteString(string(f.Text))
		case f.Type == wire.TypeQueued || f.Type == wire.TypePong || f.Type == wire.TypeDelta:
		case id == "" || f.ID == id:
			return out.String(), f
		}
	}
}

func (c *wsConn) close() {
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.conn.Close()
}

// valkeyCommands writes v into one key of every type, keys named by k, each with a TTL.
func valkeyCommands(c valkey.Client, k func(kind string) string, v string) valkey.Commands {
	cmds := valkey.Commands{
		c.B().Set().Key(k("string")).Value(v).Build(),
		c.B().Hset().Key(k("hash")).FieldValue().FieldValue("field", v).Build(),
		c.B().Rpush().Key(k("list")).Element(v).Build(),
		c.B().Sadd().Key(k("set")).Member(v).Build(),
		c.B().Zadd().Key(k("zset")).ScoreMember().ScoreMember(1, v).Build(),
		c.B().Xadd().Key(k("stream")).Id("*").FieldValue().FieldValue("field", v).Build(),
	}
	for _, kind := range []string{"string", "hash", "list", "set", "zset", "stream"} {
		cmds = append(cmds, c.B().Expire().Key(k(kind)).Seconds(300).Build())
	}
	return cmds
}
