package e2e

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valkey-io/valkey-go"
)

// system is one private deployment: the test provider, a backend on the test Valkey with its own
// key prefix, and what a client needs to reach it.
type system struct {
	t           *testing.T
	dir         string // logs, state and config live here
	stateDir    string
	providerURL string
	events      *lineWaiter // the provider's request start/end events
	eventsSeen  int         // events before this index are consumed
	backend     *proc
	wsURL       string
	httpURL     string
	prefix      string
	valkey      valkey.Client
}

// options shape a system.
type options struct {
	reply     string   // what the provider's default model streams
	paceArgs  []string // more test provider flags (--chunks, --stream-over)
	logLevel  string   // the backend's log level
	extraArgs []string // more backend flags
	// config holds TOML tables appended to the backend's config file ([[models]], [plans.x]);
	// {{provider}} in it stands for the test provider's URL.
	config string
	// backend is the backend binary's path; empty: the race-enabled one in binDir.
	backend string
	// prefix is the Valkey key prefix; empty: a random one.
	prefix string
}

func valkeyAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("CODINGPLAN_TEST_VALKEY")
	if addr == "" {
		if os.Getenv("CODINGPLAN_REQUIRE_VALKEY") != "" {
			t.Fatal("CODINGPLAN_TEST_VALKEY is not set; run the tests with make test")
		}
		t.Skip("CODINGPLAN_TEST_VALKEY is not set; make test starts Valkey and sets it")
	}
	return addr
}

func startSystem(t *testing.T, opt options) *system {
	t.Helper()
	addr := valkeyAddr(t)
	dir := t.TempDir()
	s := &system{t: t, dir: dir, stateDir: filepath.Join(dir, "state"), prefix: cmp.Or(opt.prefix, "e2e-"+randHex(6))}

	// The test provider: its first stdout line is its URL, then its events come from /_events.
	args := []string{"--listen", "127.0.0.1:0"}
	if opt.reply != "" {
		args = append(args, "--reply", opt.reply)
	}
	args = append(args, opt.paceArgs...)
	stdout, err := newPipe(t)
	if err != nil {
		t.Fatal(err)
	}
	startProc(t, dir, "codingplan-fakeprovider", nil, nil, stdout.w, args...)
	ctx := testContext(t)
	line, err := newLineWaiter(stdout.r).wait(ctx, func(string) bool { return true })
	if err != nil {
		t.Fatalf("the test provider printed no URL: %v", err)
	}
	s.providerURL = strings.TrimSpace(line)
	s.events = s.followEvents(ctx)

	config := fmt.Sprintf(`default_model = "test"

[[models]]
name = "test"
provider = "openai-chat"
base_url = %[1]q
model = "test-model"

[[models]]
name = "hang"
provider = "openai-chat"
base_url = %[1]q
model = "hang"
`, s.providerURL+"/v1") + strings.ReplaceAll(opt.config, "{{provider}}", s.providerURL)
	cfgPath := filepath.Join(dir, "backend.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	level := opt.logLevel
	if level == "" {
		level = "info"
	}
	args = append([]string{"serve", "--config", cfgPath, "--listen", "127.0.0.1:0", "--state-dir", s.stateDir,
		"--valkey", addr, "--valkey-prefix", s.prefix, "--log-level", level}, opt.extraArgs...)
	env := []string{"TMPDIR=" + filepath.Join(dir, "tmp")}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.backend = startProc(t, dir, cmp.Or(opt.backend, "codingplan-backend"), env, nil, nil, args...)
	line, err = s.backend.errLines.wait(ctx, func(l string) bool { return strings.Contains(l, `"msg":"listening"`) })
	if err != nil {
		t.Fatalf("the backend did not start listening: %v", err)
	}
	var listening struct{ Addr string }
	if err := json.Unmarshal([]byte(line), &listening); err != nil || listening.Addr == "" {
		t.Fatalf("cannot read the listen address from %s: %v", line, err)
	}
	s.httpURL = "http://" + listening.Addr
	s.wsURL = "ws://" + listening.Addr + "/v1/ws"
	if strings.Contains(config, `provider = "local"`) {
		// serve opens local models in the background; until then they answer upstream_unavailable.
		if _, err := s.backend.errLines.wait(ctx, func(l string) bool { return strings.Contains(l, `"msg":"local model ready"`) }); err != nil {
			t.Fatalf("the backend's local model never became ready: %v", err)
		}
	}

	s.valkey, err = valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatalf("connecting to Valkey: %v", err)
	}
	t.Cleanup(s.valkey.Close)
	return s
}

// token mints a development token for user on plan with the backend's own subcommand.
func (s *system) token(user, plan string) string {
	s.t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "codingplan-backend"), "token", "--sub", user, "--plan", plan,
		"--state-dir", s.stateDir).Output()
	if err != nil {
		s.t.Fatalf("codingplan-backend token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// leases returns how many leases user holds in Valkey.
func (s *system) leases(ctx context.Context, user string) int64 {
	s.t.Helper()
	n, err := s.valkey.Do(ctx, s.valkey.B().Zcard().Key(s.prefix+":{"+user+"}:leases").Build()).AsInt64()
	if err != nil {
		s.t.Fatalf("ZCARD: %v", err)
	}
	return n
}

// providerEvent is one line of the test provider's /_events stream.
type providerEvent struct {
	Kind   string `json:"kind"` // start or end
	ID     int    `json:"id"`
	Model  string `json:"model"`
	Reason string `json:"reason"`
}

func (s *system) followEvents(ctx context.Context) *lineWaiter {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.providerURL+"/_events", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("following the provider's events: %v", err)
	}
	s.t.Cleanup(func() { resp.Body.Close() })
	return newLineWaiter(resp.Body)
}

// waitEvent waits for the next provider event matching kind and model, and consumes the events
// up to it. Only one goroutine at a time may wait.
func (s *system) waitEvent(ctx context.Context, kind, model string) (providerEvent, error) {
	var ev providerEvent
	i, err := s.events.waitFrom(ctx, s.eventsSeen, func(l string) bool {
		var e providerEvent
		if json.Unmarshal([]byte(l), &e) != nil {
			return false
		}
		if e.Kind == kind && (model == "" || e.Model == model) {
			ev = e
			return true
		}
		return false
	})
	if err == nil {
		s.eventsSeen = i + 1
	}
	return ev, err
}

// editor is codingplan-lsp started as an editor starts it, with an initialized session.
type editor struct {
	*lspClient
	proc *proc
}

// startEditor starts codingplan-lsp with settings as initializationOptions and initializes it.
func (s *system) startEditor(settings map[string]any) *editor {
	s.t.Helper()
	return s.startEditorOpts(settings, editorOptions{})
}

// editorOptions shape a codingplan-lsp process and the editor driving it.
type editorOptions struct {
	args []string // codingplan-lsp's flags
	// onRequest answers the server's requests (nil: null to every one). It is set before
	// initialize, so it sees every request.
	onRequest func(method string, params json.RawMessage) (any, error)
	// bin is codingplan-lsp's path; empty: the race-enabled one in binDir.
	bin string
}

// startEditorOpts is startEditor with options. HOME, the XDG directories and TMPDIR of the
// server all lie under s.dir/home.
func (s *system) startEditorOpts(settings map[string]any, opt editorOptions) *editor {
	s.t.Helper()
	stdin, err := newPipe(s.t)
	if err != nil {
		s.t.Fatal(err)
	}
	stdout, err := newPipe(s.t)
	if err != nil {
		s.t.Fatal(err)
	}
	home := filepath.Join(s.dir, "home")
	env := []string{"CODINGPLAN_TOKEN=", "CODINGPLAN_BACKEND_URL=", "HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_STATE_HOME=" + filepath.Join(home, ".local/state"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "XDG_DATA_HOME=" + filepath.Join(home, ".local/share"),
		"TMPDIR=" + filepath.Join(home, "tmp")}
	if err := os.MkdirAll(filepath.Join(home, "tmp"), 0o700); err != nil {
		s.t.Fatal(err)
	}
	p := startProc(s.t, s.dir, cmp.Or(opt.bin, "codingplan-lsp"), env, stdin.r, stdout.w, opt.args...)
	// The child has its own copies; closing ours lets EOF on stdout mean the server exited.
	stdout.w.Close()
	stdin.r.Close()
	c := newLSPClient(s.t, bufio.NewReader(stdout.r), stdin.w)
	if opt.onRequest != nil {
		c.onRequest = opt.onRequest
	}
	s.t.Cleanup(func() { stdin.w.Close() })
	ctx := testContext(s.t)
	settings["backendUrl"] = s.wsURL
	var init struct {
		Capabilities map[string]json.RawMessage `json:"capabilities"`
	}
	err = c.call(ctx, "initialize", map[string]any{
		"processId": os.Getpid(),
		"rootUri":   "file:///work/project",
		"capabilities": map[string]any{
			"general":      map[string]any{"positionEncodings": []string{"utf-16"}},
			"textDocument": map[string]any{"inlineCompletion": map[string]any{}},
			"window":       map[string]any{"workDoneProgress": true},
		},
		"initializationOptions": map[string]any{"codingplan": settings},
		"workspaceFolders":      []map[string]any{{"uri": "file:///work/project", "name": "project"}},
	}, &init)
	if err != nil {
		s.t.Fatalf("initialize: %v", err)
	}
	if _, ok := init.Capabilities["inlineCompletionProvider"]; !ok {
		s.t.Fatalf("initialize advertises no inlineCompletionProvider: %v", init.Capabilities)
	}
	c.notify("initialized", map[string]any{})
	return &editor{lspClient: c, proc: p}
}

// waitReady waits for the codingplan/status notification that says the connection is ready.
func (e *editor) waitReady(ctx context.Context) error {
	_, err := e.waitNote(ctx, "codingplan/status", func(p json.RawMessage) bool {
		var st struct{ State string }
		return json.Unmarshal(p, &st) == nil && st.State == "ready"
	})
	return err
}

func (e *editor) open(uri, language, text string) {
	e.notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{
		"uri": uri, "languageId": language, "version": 1, "text": text}})
}

type inlineItem struct {
	InsertText string   `json:"insertText"`
	Range      lspRange `json:"range"`
}

func inlineParams(uri string, pos position) map[string]any {
	return map[string]any{
		"textDocument": map[string]any{"uri": uri},
		"position":     pos,
		"context":      map[string]any{"triggerKind": 2},
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

type pipe struct {
	r *os.File
	w *os.File
}

// newPipe makes an OS pipe whose ends are closed when the test ends.
func newPipe(t *testing.T) (pipe, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return pipe{}, err
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return pipe{r: r, w: w}, nil
}
