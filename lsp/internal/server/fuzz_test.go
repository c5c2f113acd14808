package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"testing"
	"time"
)

const probe = `{"jsonrpc":"2.0","id":"probe","method":"workspace/executeCommand","params":{"command":"codingplan.status"}}`

// FuzzServerInput feeds arbitrary bytes, framed as one LSP message, to a server over a pipe,
// then a probe request. The server must not panic, must answer malformed JSON with a
// well-formed ParseError (-32700, id null), must write only well-formed JSON-RPC, and must
// still answer the probe unless the message was exit: any other input, valid or not, that
// ends the server fails.
func FuzzServerInput(f *testing.F) {
	for _, seed := range []string{
		`{`, `not json`, ``, `null`, `[]`, `"x"`, `{"jsonrpc":"2.0"}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}`,
		`{"jsonrpc":"2.0","method":"exit"}`,
		`{"jsonrpc":"2.0","id":{},"method":"x"}`,
		`{"jsonrpc":"2.0","id":99999999999,"method":"shutdown"}`,
		`{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"probe"}}`,
		`{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///a","text":"x"}}}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sr, cw := io.Pipe()
		cr, sw := io.Pipe()
		s := New(Config{Engine: &fakeEngine{}, Backend: &fakeBackend{}}, nil)
		done := make(chan error, 1)
		go func() {
			done <- s.Run(context.Background(), struct {
				io.Reader
				io.Writer
				io.Closer
			}{sr, sw, closerFunc(func() error { sr.Close(); return sw.Close() })})
		}()
		go func() {
			fmt.Fprintf(cw, "Content-Length: %d\r\n\r\n", len(body))
			cw.Write(body)
			fmt.Fprintf(cw, "Content-Length: %d\r\n\r\n%s", len(probe), probe)
		}()

		type reply struct {
			Version string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Method  string          `json:"method"`
			Error   *struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		replies := make(chan reply)
		readErr := make(chan error, 1)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			br := bufio.NewReader(cr)
			tp := textproto.NewReader(br)
			for {
				h, err := tp.ReadMIMEHeader()
				if err != nil {
					readErr <- nil // the server closed: it exited
					return
				}
				n, err := strconv.Atoi(h.Get("Content-Length"))
				if err != nil {
					readErr <- fmt.Errorf("frame without Content-Length: %v", h)
					return
				}
				b := make([]byte, n)
				if _, err := io.ReadFull(br, b); err != nil {
					readErr <- err
					return
				}
				var r reply
				if err := json.Unmarshal(b, &r); err != nil || r.Version != "2.0" {
					readErr <- fmt.Errorf("server wrote a malformed message %q", b)
					return
				}
				select {
				case replies <- r:
				case <-stop:
					return
				}
			}
		}()

		sawParseError := false
		timeout := time.After(deadline)
	loop:
		for {
			select {
			case r := <-replies:
				if r.Error != nil && r.Error.Code == -32700 {
					if string(r.ID) != "null" {
						t.Errorf("ParseError with id %s, want null", r.ID)
					}
					sawParseError = true
				}
				if string(r.ID) == `"probe"` && r.Method == "" {
					break loop
				}
			case err := <-readErr:
				if err != nil {
					t.Fatal(err)
				}
				if !asksExit(body) {
					t.Fatalf("the server ended on %q before answering the probe", body)
				}
				break loop
			case <-timeout:
				t.Fatal("no answer to the probe")
			}
		}
		if !json.Valid(body) && !sawParseError {
			t.Errorf("no ParseError for %q", body)
		}
		cw.Close()
		cr.Close()
		select {
		case <-done:
		case <-time.After(deadline):
			t.Fatal("server did not stop")
		}
	})
}

// asksExit reports whether body is an exit message, the only input the server may end on. It
// decodes the way the server does (encoding/json, so the key's case does not matter).
func asksExit(body []byte) bool {
	var m struct {
		Method string `json:"method"`
	}
	return json.Unmarshal(body, &m) == nil && m.Method == "exit"
}
