package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/valkey-io/valkey-go"

	wire "github.com/codingplan/codingplan/shared"

	"github.com/codingplan/codingplan/backend/internal/valkeytest"
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

// TestServeValkeyLate: with Valkey down at start, serve still starts, says degraded in /readyz,
// /metrics and its log, and refuses streams under the default outage policy (closed) with a
// retry hint; once a Valkey comes up on that address it becomes ready, and a stream's lease is
// in Valkey while it runs and gone after.
func TestServeValkeyLate(t *testing.T) {
	if _, err := exec.LookPath("valkey-server"); err != nil && os.Getenv("CODINGPLAN_REQUIRE_VALKEY") != "1" {
		t.Skip("valkey-server is not installed")
	}
	port := valkeytest.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	prefix := fmt.Sprintf("test-late-%d", time.Now().UnixNano())
	gate := make(chan struct{}, 1)
	provider := gatedOpenAI(t, gate)
	s := startServe(t, fmt.Sprintf(`listen = "127.0.0.1:0"
valkey = %q
valkey_prefix = %q
drain_timeout = "5s"
# The test's Valkey is new: no leases from before it to wait for.
lease_recovery_window = "-1s"

[[models]]
name = "fake"
aliases = ["default"]
provider = "openai-chat"
base_url = %q
model = "fake-1"
`, addr, prefix, provider))

	if got := s.readyz(); got["status"] != "degraded" {
		t.Errorf("/readyz with Valkey down: %v, want degraded", got)
	}
	if _, metrics := s.get("/metrics"); !strings.Contains(metrics, "codingplan_lease_degraded 1\n") {
		t.Error("/metrics does not flag the lease pool degraded")
	}
	if logs := s.stderr.String(); !strings.Contains(logs, "valkey unreachable at start") {
		t.Errorf("no warning in the log:\n%s", logs)
	}
	st := s.request("c1")
	if f := st.read(); f.Type != wire.TypeError || f.Code != wire.CodeInternal || f.RetryAfterMS <= 0 {
		t.Fatalf("request while Valkey is down: %+v, want an internal error with retry_after_ms", f)
	}

	valkeytest.StartOn(t, port)
	s.awaitReadyz("status", "ready")
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	leases := func() int64 {
		t.Helper()
		n, err := client.Do(context.Background(), client.B().Zcard().Key(prefix+":{dev}:leases").Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The lease is released just after done is queued: watch the key's keyspace events to see
	// it go, rather than reading it once.
	if err := client.Do(context.Background(), client.B().ConfigSet().ParameterValue().
		ParameterValue("notify-keyspace-events", "Kgz").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 1)
	subscribed := make(chan struct{})
	conn, release := client.Dedicate()
	wait := conn.SetPubSubHooks(valkey.PubSubHooks{
		OnMessage: func(valkey.PubSubMessage) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
		OnSubscription: func(s valkey.PubSubSubscription) {
			if s.Kind == "subscribe" {
				close(subscribed)
			}
		},
	})
	defer func() { release(); <-wait }()
	if err := conn.Do(context.Background(), conn.B().Subscribe().Channel("__keyspace@0__:"+prefix+":{dev}:leases").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	<-subscribed

	st = s.request("c2")
	st.expect(wire.TypeDelta, "hello ")
	if n := leases(); n != 1 {
		t.Errorf("leases in Valkey during the stream: %d, want 1", n)
	}
	gate <- struct{}{}
	st.expect(wire.TypeDelta, "world")
	st.expect(wire.TypeDone, "")
	deadline := time.After(10 * time.Second)
	for n := leases(); n != 0; n = leases() {
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("leases in Valkey after the stream: %d, want 0", n)
		}
	}
	if got := s.readyz(); got["status"] != "ready" {
		t.Errorf("/readyz at the end: %v", got)
	}
	s.stop()
	if logs := s.stderr.String(); !strings.Contains(logs, `"msg":"valkey connected"`) {
		t.Errorf("the log does not say Valkey connected:\n%s", logs)
	}
}

// TestLateClient: before connect every command fails at once with errNotConnected; after it,
// commands and scripts reach Valkey, and a command built before connect fails instead of
// reaching a cluster client with the wrong kind of slot.
func TestLateClient(t *testing.T) {
	for _, tt := range []struct {
		name, env string
		cluster   bool
	}{{"single", "CODINGPLAN_TEST_VALKEY", false}, {"cluster", "CODINGPLAN_TEST_VALKEY_CLUSTER", true}} {
		t.Run(tt.name, func(t *testing.T) {
			addr := os.Getenv(tt.env)
			if addr == "" {
				if os.Getenv("CODINGPLAN_REQUIRE_VALKEY") == "1" {
					t.Fatalf("CODINGPLAN_REQUIRE_VALKEY=1 but %s is not set", tt.env)
				}
				t.Skip("no Valkey: set " + tt.env)
			}
			ctx := context.Background()
			opt := valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true, ForceSingleClient: !tt.cluster}
			c, err := newLateClient(opt)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			key := fmt.Sprintf("test-late-client-%d:{u}:k", time.Now().UnixNano())
			early := c.B().Get().Key(key).Build()
			if err := c.Do(ctx, c.B().Ping().Build()).Error(); !errors.Is(err, errNotConnected) {
				t.Fatalf("ping before connect: %v, want errNotConnected", err)
			}
			for _, res := range c.DoMulti(ctx, c.B().Ping().Build(), c.B().Ping().Build()) {
				if !errors.Is(res.Error(), errNotConnected) {
					t.Fatalf("pipelined ping before connect: %v, want errNotConnected", res.Error())
				}
			}
			if !c.connect(ctx, opt, slog.New(slog.DiscardHandler)) {
				t.Fatal("connect failed")
			}
			err = c.Do(ctx, early).Error()
			if tt.cluster && !errors.Is(err, errNotConnected) {
				t.Errorf("command built before connect: %v, want errNotConnected", err)
			}
			if !tt.cluster && !valkey.IsValkeyNil(err) {
				t.Errorf("command built before connect: %v, want nil reply", err)
			}
			script := valkey.NewLuaScript(`redis.call('SET', KEYS[1], ARGV[1], 'EX', 60) return redis.call('GET', KEYS[1])`)
			if got, err := script.Exec(ctx, c, []string{key}, []string{"v"}).ToString(); err != nil || got != "v" {
				t.Errorf("script after connect: %q, %v", got, err)
			}
			if err := c.Do(ctx, c.B().Del().Key(key).Build()).Error(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestLateClientGivesUp: connect returns false once its context ends.
func TestLateClientGivesUp(t *testing.T) {
	opt := valkey.ClientOption{InitAddress: []string{"127.0.0.1:" + strconv.Itoa(valkeytest.FreePort(t))}, DisableCache: true, ForceSingleClient: true}
	c, err := newLateClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c.connect(ctx, opt, slog.New(slog.DiscardHandler)) {
		t.Fatal("connected to a port where nothing listens")
	}
	if err := c.Do(context.Background(), c.B().Ping().Build()).Error(); !errors.Is(err, errNotConnected) {
		t.Errorf("ping: %v, want errNotConnected", err)
	}
}
