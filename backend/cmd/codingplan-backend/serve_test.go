package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// gatedOpenAI speaks OpenAI's streaming chat format: it sends "hello ", then waits for a value
// on gate before it sends "world", the finish, usage and [DONE].
func gatedOpenAI(t *testing.T, gate <-chan struct{}) string {
	t.Helper()
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := func(p string) {
			data, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk",
				"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": p}, "finish_reason": nil}}})
			fmt.Fprintf(w, "data: %s\n\n", data)
			w.(http.Flusher).Flush()
		}
		chunk("hello ")
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		chunk("world")
		fmt.Fprint(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n")
		fmt.Fprint(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`+"\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { // owned by the cleanup, which waits for it
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	return "http://" + ln.Addr().String()
}

// served is a `serve` running in this process.
type served struct {
	t      *testing.T
	base   string // http://host:port
	ws     string // ws://host:port/v1/ws
	token  string
	state  string // the state dir, which holds the development key
	stderr *syncBuffer
	stop   func() // SIGTERM, then waits for serve to return
}

// startServe runs `serve` with the TOML configuration text and waits for its banner.
func startServe(t *testing.T, cfgText string) *served {
	t.Helper()
	return startServeEnv(t, cfgText, nil)
}

// startServeEnv is startServe with the environment variables vars.
func startServeEnv(t *testing.T, cfgText string, vars map[string]string) *served {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "backend.toml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr := newTerminal(), newSyncBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { // owned by stop, which waits for it
		done <- run(ctx, []string{"serve", "--config", cfgPath, "--state-dir", filepath.Join(dir, "state")}, stdout, stderr, env(vars))
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v\n%s", err, stderr.String())
			}
		case <-time.After(wait):
			t.Errorf("serve did not return after the drain")
		}
	}
	t.Cleanup(stop)
	m := stdout.await(t, regexp.MustCompile(`export CODINGPLAN_BACKEND_URL=(ws://([^/\s]+)/v1/ws)\n\s*export CODINGPLAN_TOKEN=(\S+)\n`))
	return &served{t: t, base: "http://" + m[2], ws: m[1], token: m[3], state: filepath.Join(dir, "state"), stderr: stderr, stop: stop}
}

// get returns the status and body of GET path.
func (s *served) get(path string) (int, string) {
	s.t.Helper()
	resp, err := http.Get(s.base + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readyz returns /readyz's JSON body.
func (s *served) readyz() map[string]any {
	s.t.Helper()
	code, body := s.get("/readyz")
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil || code != http.StatusOK {
		s.t.Fatalf("/readyz: %d %s", code, body)
	}
	return v
}

// awaitReadyz polls /readyz until its field key is want.
func (s *served) awaitReadyz(key, want string) {
	s.t.Helper()
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		got := s.readyz()
		if got[key] == want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("/readyz %s stayed %v, want %q (%v)\n%s", key, got[key], want, got, s.stderr.String())
		}
		<-tick.C
	}
}

// stream is one completion request on its own connection.
type stream struct {
	t *testing.T
	c *websocket.Conn
}

func (s *served) request(id string) *stream {
	s.t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(s.ws, http.Header{"Authorization": {"Bearer " + s.token}})
	if err != nil {
		s.t.Fatalf("dial: %v %v", err, resp)
	}
	s.t.Cleanup(func() { c.Close() })
	st := &stream{t: s.t, c: c}
	if f := st.read(); f.Type != wire.TypeHello {
		s.t.Fatalf("got %+v, want hello", f)
	}
	req, _ := wire.Marshal(wire.ClientFrame{Type: wire.TypeRequest, ID: id, Op: wire.OpCompletion,
		Completion: &wire.Completion{Prefix: "func main() {\n\t", Language: "go"}})
	if err := c.WriteMessage(websocket.TextMessage, req); err != nil {
		s.t.Fatal(err)
	}
	return st
}

func (st *stream) read() wire.ServerFrame {
	st.t.Helper()
	_ = st.c.SetReadDeadline(time.Now().Add(wait))
	_, data, err := st.c.ReadMessage()
	if err != nil {
		st.t.Fatalf("read: %v", err)
	}
	f, err := wire.DecodeServer(data)
	if err != nil {
		st.t.Fatal(err)
	}
	return f
}

// expect reads the next frame and checks its type and, for a delta, its text.
func (st *stream) expect(typ, text string) {
	st.t.Helper()
	f := st.read()
	if f.Type != typ || (typ == wire.TypeDelta && string(f.Text) != text) {
		st.t.Fatalf("got %s frame %+v (text %q), want %s %q", f.Type, f, string(f.Text), typ, text)
	}
}

// TestServeLocalModel: serve with a local model trained on a tiny corpus listens, reports the
// model in /readyz until it is ready, then completes with it.
func TestServeLocalModel(t *testing.T) {
	corpus := t.TempDir()
	for i := range 20 {
		src := fmt.Sprintf("package p\n\nfunc add%d(a, b int) int {\n\treturn a + b\n}\n\nfunc sub%d(a, b int) int {\n\treturn a - b\n}\n", i, i)
		if err := os.WriteFile(filepath.Join(corpus, fmt.Sprintf("f%d.go", i)), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startServe(t, fmt.Sprintf(`listen = "127.0.0.1:0"
drain_timeout = "5s"

[[models]]
name = "local"
aliases = ["default"]
provider = "local"
[models.options]
corpus_dirs = %q
no_goroot = "true"
`, corpus))
	if got := s.readyz(); got["local_model"] != upstream.LocalLoading && got["local_model"] != upstream.LocalReady {
		t.Errorf("/readyz: %v, want local_model loading or ready", got)
	}
	s.awaitReadyz("local_model", upstream.LocalReady)
	st := s.request("c1")
	for {
		f := st.read()
		if f.Type == wire.TypeDone {
			break
		}
		if f.Type != wire.TypeDelta {
			t.Fatalf("got %+v, want deltas and done", f)
		}
	}
}
