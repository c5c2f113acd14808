package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/usage"
	wire "github.com/codingplan/codingplan/shared"
)

const wait = 20 * time.Second

// syncBuffer is an io.Writer tests can read while run writes to it; changed is signalled on
// every write. A terminal buffer stands for stdout on a terminal, where serve prints its
// development token.
type syncBuffer struct {
	mu       sync.Mutex
	b        bytes.Buffer
	changed  chan struct{}
	terminal bool
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func newTerminal() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1), terminal: true} }

func (s *syncBuffer) IsTerminal() bool { return s.terminal }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// await waits until re matches the buffer and returns the submatches.
func (s *syncBuffer) await(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(wait)
	for {
		if m := re.FindStringSubmatch(s.String()); m != nil {
			return m
		}
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("output never matched %s:\n%s", re, s.String())
		}
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestToken(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	vars := map[string]string{"CODINGPLAN_STATE_DIR": dir}
	if err := run(context.Background(), []string{"token", "--sub", "alice", "--plan", "max", "--ttl", "1h"}, &out, &errOut, env(vars)); err != nil {
		t.Fatalf("token: %v (%s)", err, errOut.String())
	}
	tok := strings.TrimSuffix(out.String(), "\n")
	if strings.Count(out.String(), "\n") != 1 || strings.Count(tok, ".") != 2 {
		t.Fatalf("stdout is not one token line: %q", out.String())
	}
	v, err := auth.NewVerifier(context.Background(), auth.Config{JWKS: auth.DevJWKSPath(dir)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	if c.Subject != "alice" || c.Plan != "max" || c.SID != "" {
		t.Errorf("claims: sub=%q plan=%q sid=%q", c.Subject, c.Plan, c.SID)
	}
	out.Reset()
	if err := run(context.Background(), []string{"token", "--sub", "alice", "--plan", "max", "--sid", "key-1"}, &out, &errOut, env(vars)); err != nil {
		t.Fatalf("token --sid: %v (%s)", err, errOut.String())
	}
	if c, err = v.Verify(context.Background(), strings.TrimSpace(out.String())); err != nil || c.SID != "key-1" {
		t.Errorf("token --sid: claims %+v, %v; want sid key-1", c, err)
	}

	bad := []struct {
		name string
		args []string
	}{
		{"no sub", []string{"token", "--plan", "pro"}},
		{"unknown plan", []string{"token", "--sub", "a", "--plan", "gold"}},
		{"unknown command", []string{"tokens"}},
		{"no command", nil},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, io.Discard, io.Discard, env(vars))
			if !errors.Is(err, errUsage) {
				t.Errorf("got %v, want a usage error", err)
			}
		})
	}
}

// fakeOpenAI speaks OpenAI's streaming chat format: one chunk per piece, a finish chunk, a
// usage chunk and [DONE]. It reports whether the request carried the canary.
func fakeOpenAI(t *testing.T, pieces []string, sawCanary chan<- bool, canary string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sawCanary <- bytes.Contains(body, []byte(canary))
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for _, p := range pieces {
			data, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk",
				"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": p}, "finish_reason": nil}}})
			fmt.Fprintf(w, "data: %s\n\n", data)
			fl.Flush()
		}
		fmt.Fprint(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n")
		fmt.Fprint(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":2,"total_tokens":13}}`+"\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestServe runs `serve` in process against a fake OpenAI-compatible provider: the banner, the
// health endpoints, one streamed request carrying canaries, /metrics, the drain on shutdown,
// and no canary in the debug logs.
func TestServe(t *testing.T) {
	const canaryIn, canaryOut = "CANARY-PROMPT-7f3a9", "CANARY-OUTPUT-c41d2"
	sawCanary := make(chan bool, 1)
	provider := fakeOpenAI(t, []string{"return a + b ", canaryOut}, sawCanary, canaryIn)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "backend.toml")
	cfgText := fmt.Sprintf("listen = \"127.0.0.1:0\"\nlog_level = \"debug\"\ndrain_timeout = \"5s\"\n\n[[models]]\nname = \"fake\"\naliases = [\"default\"]\nprovider = \"openai-chat\"\nbase_url = %q\nmodel = \"fake-1\"\n", provider.URL)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr := newTerminal(), newSyncBuffer()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfgPath, "--state-dir", filepath.Join(dir, "state")}, stdout, stderr, env(nil))
	}()
	m := stdout.await(t, regexp.MustCompile(`export CODINGPLAN_BACKEND_URL=(ws://[^/\s]+)(/v1/ws)\n\s*export CODINGPLAN_TOKEN=(\S+)\n`))
	base, token := "http"+strings.TrimPrefix(m[1], "ws"), m[3]

	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}

	c, resp, err := websocket.DefaultDialer.Dial(m[1]+m[2], http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	defer c.Close()
	read := func() wire.ServerFrame {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		f, err := wire.DecodeServer(data)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := read(); f.Type != wire.TypeHello || f.Plan == nil || f.Plan.Name != "pro" {
		t.Fatalf("hello: %+v", f)
	}
	req, _ := wire.Marshal(wire.ClientFrame{Type: wire.TypeRequest, ID: "c1", Op: wire.OpCompletion,
		Completion: &wire.Completion{Prefix: wire.Text("func add(a, b int) int { // " + canaryIn + "\n\t"), Language: "go"}})
	if err := c.WriteMessage(websocket.TextMessage, req); err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for {
		f := read()
		if f.Type == wire.TypeDelta {
			text.WriteString(string(f.Text))
			continue
		}
		if f.Type != wire.TypeDone || f.Usage == nil || f.Usage.CompletionTokens != 2 {
			t.Fatalf("got %+v, want done with usage", f)
		}
		break
	}
	if got, want := text.String(), "return a + b "+canaryOut; got != want {
		t.Errorf("streamed text: got %q, want %q", got, want)
	}
	if !<-sawCanary {
		t.Error("the provider did not get the prompt")
	}

	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`codingplan_requests_total{outcome="ok"} 1`, `codingplan_tokens_total{kind="completion"} 2`, `codingplan_connections 1`} {
		if !bytes.Contains(metricsText, []byte(want+"\n")) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	stop() // SIGTERM
	if f := read(); f.Type != wire.TypeGoaway {
		t.Errorf("got %+v, want goaway", f)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("serve did not return after the drain")
	}

	logs := stderr.String()
	if testing.Verbose() {
		t.Log(logs)
	}
	for _, leak := range []string{canaryIn, canaryOut, token} {
		if strings.Contains(logs, leak) || bytes.Contains(metricsText, []byte(leak)) {
			t.Errorf("logs or metrics contain content or the token %.12s...", leak)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(logs))
	lines := 0
	for sc.Scan() {
		lines++
		if !json.Valid(sc.Bytes()) {
			t.Errorf("log line is not JSON: %s", sc.Text())
		}
	}
	if lines < 5 || !strings.Contains(logs, `"msg":"stream ended"`) || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("logs lack the expected lines:\n%s", logs)
	}
}

// TestServeConfiguredPlans: with only [plans.two] and [plans.pro] configured, a token for the
// built-in plan max is refused at the upgrade with HTTP 403, and a configured plan is admitted.
func TestServeConfiguredPlans(t *testing.T) {
	s := startServe(t, "listen = \"127.0.0.1:0\"\n\n[plans.two]\nconcurrency = 2\n\n[plans.pro]\nconcurrency = 3\n")
	defer s.stop()
	dev, _, err := auth.LoadOrCreateDevKey(s.state)
	if err != nil {
		t.Fatal(err)
	}
	dev.Issuer, dev.Audience = "codingplan", "codingplan-backend"
	for _, tt := range []struct {
		plan string
		want int
	}{{"max", http.StatusForbidden}, {"lite", http.StatusForbidden}, {"two", http.StatusSwitchingProtocols}} {
		tok, err := dev.Mint("alice", tt.plan, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, resp, err := websocket.DefaultDialer.Dial(s.ws, http.Header{"Authorization": {"Bearer " + tok}})
		if c != nil {
			c.Close()
		}
		if resp == nil {
			t.Fatalf("plan %s: no response: %v", tt.plan, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("plan %s: got HTTP %d %s, want %d", tt.plan, resp.StatusCode, body, tt.want)
		}
		if tt.want == http.StatusForbidden && !bytes.Contains(body, []byte(wire.CodeQuotaExceeded)) {
			t.Errorf("plan %s: refusal %s does not name %s", tt.plan, body, wire.CodeQuotaExceeded)
		}
	}
}

// TestServeBannerNoTerminal: when stdout is not a terminal (a file, a pipe, a journal: a log),
// serve prints no development token anywhere, only how to mint one.
func TestServeBannerNoTerminal(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { // owned by this test, which waits for it below
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "state")}, stdout, stderr, env(nil))
	}()
	stdout.await(t, regexp.MustCompile(`export CODINGPLAN_TOKEN=<the token>\n`))
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("serve did not return")
	}
	jwt := regexp.MustCompile(`eyJ[\w-]+\.[\w-]+\.[\w-]+`)
	for name, out := range map[string]string{"stdout": stdout.String(), "stderr (the log)": stderr.String()} {
		if tok := jwt.FindString(out); tok != "" {
			t.Errorf("%s holds a token %.16s...:\n%s", name, tok, out)
		}
	}
	if !strings.Contains(stdout.String(), "codingplan-backend token --sub dev --plan pro") {
		t.Errorf("the banner does not say how to mint a token:\n%s", stdout.String())
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, io.Discard, env(nil)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "codingplan-backend ") {
		t.Errorf("version: %q", out.String())
	}
}

func TestUsageCommand(t *testing.T) {
	addr := os.Getenv("CODINGPLAN_TEST_VALKEY")
	if addr == "" {
		if os.Getenv("CODINGPLAN_REQUIRE_VALKEY") == "1" {
			t.Fatal("CODINGPLAN_REQUIRE_VALKEY=1 but CODINGPLAN_TEST_VALKEY is not set")
		}
		t.Skip("no Valkey: set CODINGPLAN_TEST_VALKEY")
	}
	prefix := fmt.Sprintf("test-cmd-usage-%d", time.Now().UnixNano())
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	defer func() { // every usage key has a TTL, but leave nothing behind
		keys, _ := client.Do(context.Background(), client.B().Keys().Pattern(prefix+":*").Build()).AsStrSlice()
		for _, k := range keys {
			client.Do(context.Background(), client.B().Del().Key(k).Build())
		}
	}()
	meter := usage.New(client, prefix, nil)
	for _, u := range []wire.Usage{{PromptTokens: 10, CompletionTokens: 2}, {PromptTokens: 5, CompletionTokens: 1}} {
		if err := meter.Record(context.Background(), "alice", u); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	args := []string{"usage", "--user", "alice", "--valkey", addr, "--valkey-prefix", prefix}
	if err := run(context.Background(), args, &out, io.Discard, env(nil)); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %q", out.String())
	}
	want := map[string]any{"user": "alice", "day": time.Now().UTC().Format("2006-01-02"),
		"requests": 2.0, "prompt_tokens": 15.0, "completion_tokens": 3.0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v (output %s)", k, got[k], v, out.String())
		}
	}
	if err := run(context.Background(), []string{"usage", "--user", "alice"}, io.Discard, io.Discard, env(nil)); !errors.Is(err, errUsage) {
		t.Errorf("usage without Valkey: got %v, want a usage error", err)
	}
}
