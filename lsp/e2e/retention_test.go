package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestZeroRetention sends canaries through the whole system and then looks for them
// everywhere the system could keep them. Canaries go into the document an editor edits, the
// Rewrite instruction, a diagnostic, every text field of frames sent straight over the
// websocket (good and malformed ones, and bad tokens), and into what the providers answer: the
// test provider's reply, the echo model (which streams the prompt back) over the three remote
// APIs, an upstream error message that quotes the prompt, and the local n-gram model. The
// backend runs at log level debug, codingplan-lsp at debug with trace "messages", and Valkey's
// MONITOR is captured throughout. Afterwards no canary may appear in either process's log,
// /metrics, the MONITOR capture, any key or value in Valkey, the backend's state dir and
// TMPDIR, its open files, the language server's HOME, XDG and TMPDIR, or files the run left
// in the system's temp dir. Positive controls prove each search can fail: canaries reach the
// editor, a canary the test itself writes to Valkey shows up in MONITOR and the keyspace dump,
// and a canary sent while the trace is switched to "content" shows up in the server's log.
func TestZeroRetention(t *testing.T) {
	addr := valkeyAddr(t)
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*deadline)
	defer cancel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}

	doc, instr, diag, reply := newCanary("document text"), newCanary("rewrite instruction"), newCanary("diagnostic"), newCanary("provider reply")
	wsText, wsBad, wsLocal := newCanary("websocket request"), newCanary("malformed websocket frame"), newCanary("local model prompt")
	badToken := newCanary("invalid token")
	badToken.secret = true
	canaries := []canary{doc, instr, diag, reply, wsText, wsBad, wsLocal, badToken}
	control := newCanary("control") // written on purpose: must be found

	mon := startMonitor(t, addr, filepath.Join(t.TempDir(), "monitor.txt"), control.value)
	s := startSystem(t, options{
		reply:    "return " + reply.value + " + b",
		logLevel: "debug",
		config:   retentionModels(filepath.Join(root, "backend/internal/ngram/testdata/corpus")),
	})
	user := "retention-" + randHex(4)
	token := s.token(user, "pro")
	canaries = append(canaries, canary{label: "editor token", value: token, secret: true})

	edits := make(chan json.RawMessage, 8)
	lspLogPath := filepath.Join(t.TempDir(), "lsp.log")
	ed := s.startEditorOpts(map[string]any{"token": token, "trace": "messages"}, editorOptions{
		// Its log goes to a file here: without one it goes to the editor (window/logMessage).
		args: []string{"--log-level", "debug", "--log-file", lspLogPath},
		onRequest: func(method string, params json.RawMessage) (any, error) {
			if method == "workspace/applyEdit" {
				edits <- params
				return map[string]any{"applied": true}, nil
			}
			return nil, nil
		},
	})
	if err := ed.waitReady(ctx); err != nil {
		t.Fatalf("the server never said it is ready: %v", err)
	}

	// Through codingplan-lsp: inline completions with three models, Rewrite, Fix and Explain.
	text := "package calc\n\n" +
		"// " + doc.value + " is in a comment, a string and a name.\n" +
		"var " + doc.value + " = \"\\\"<" + doc.value + ">\\\"\\t é 🙂\"\n\n" +
		"func add(a, b int) int {\n\treturn \n}\n\n// After the cursor: " + doc.value + ".\n"
	cursor := position{Line: 6, Character: len("\treturn ")}
	for _, model := range []string{"", "echo", "local"} {
		ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"codingplan": map[string]any{"model": model}}})
		uri := fmt.Sprintf("file:///work/project/calc/add_%s.go", cmp.Or(model, "test"))
		ed.open(uri, "go", text)
		var list struct{ Items []inlineItem }
		if err := ed.call(ctx, "textDocument/inlineCompletion", inlineParams(uri, cursor), &list); err != nil {
			t.Fatalf("inlineCompletion with model %q: %v", model, err)
		}
		if model == "" {
			// Positive control: the provider's canary reached the editor.
			if len(list.Items) == 0 || !strings.Contains(list.Items[0].InsertText, reply.value) {
				t.Fatalf("the completion the editor got lacks the reply canary: %+v", list.Items)
			}
		}
	}
	ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"codingplan": map[string]any{"model": ""}}})
	uri := "file:///work/project/calc/add_test.go"
	line := lspRange{Start: position{Line: 3}, End: position{Line: 3, Character: len("var ") + len(doc.value)}}
	var res json.RawMessage
	if err := ed.call(ctx, "workspace/executeCommand", map[string]any{"command": "codingplan.rewrite",
		"arguments": []any{map[string]any{"uri": uri, "range": line, "instruction": "Rename " + instr.value + " to sum."}}}, &res); err != nil {
		t.Fatalf("codingplan.rewrite: %v", err)
	}
	waitEdit(ctx, t, edits, reply.value, "Rewrite")

	var actions []struct {
		Kind    string          `json:"kind"`
		Command json.RawMessage `json:"command"`
	}
	diagnostic := map[string]any{"range": line, "severity": 1, "source": "compiler", "message": "undefined: " + diag.value}
	if err := ed.call(ctx, "textDocument/codeAction", map[string]any{"textDocument": map[string]any{"uri": uri}, "range": line,
		"context": map[string]any{"diagnostics": []any{diagnostic}}}, &actions); err != nil {
		t.Fatalf("codeAction: %v", err)
	}
	var fix json.RawMessage
	for _, a := range actions {
		if a.Kind == "quickfix.codingplan.fix" {
			if err := ed.call(ctx, "codeAction/resolve", a, &fix); err != nil {
				t.Fatalf("codeAction/resolve: %v", err)
			}
		}
	}
	var resolved struct{ Command json.RawMessage }
	if err := json.Unmarshal(fix, &resolved); err != nil || len(resolved.Command) == 0 {
		t.Fatalf("no Fix action with a command among %d actions: %s", len(actions), fix)
	}
	if err := ed.call(ctx, "workspace/executeCommand", resolved.Command, &res); err != nil {
		t.Fatalf("running the Fix action: %v", err)
	}
	waitEdit(ctx, t, edits, reply.value, "Fix")

	// Explain with the echo model shows the prompt it was sent: the document's canary made the
	// whole round trip (positive control for the echo path).
	ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"codingplan": map[string]any{"model": "echo"}}})
	if err := ed.call(ctx, "workspace/executeCommand", map[string]any{"command": "codingplan.runAction",
		"arguments": []any{map[string]any{"uri": uri, "range": line, "kind": "refactor.codingplan.explain"}}}, &res); err != nil {
		t.Fatalf("Explain: %v", err)
	}
	if _, err := ed.waitNote(ctx, "window/showMessage", func(p json.RawMessage) bool { return strings.Contains(string(p), doc.value) }); err != nil {
		t.Fatalf("Explain with the echo model never showed the document's canary: %v", err)
	}

	// Straight over the websocket, every text field, every provider kind.
	wsToken := s.token("retention-ws-"+randHex(4), "pro")
	canaries = append(canaries, canary{label: "websocket token", value: wsToken, secret: true})
	wsRequests(ctx, t, s, wsToken, wsText, wsBad, wsLocal, badToken)

	// The backend's state while it runs: metrics, core dump settings, open files.
	metrics := httpGet(ctx, t, s.httpURL+"/metrics")
	if !strings.Contains(string(metrics), `codingplan_requests_total{outcome="ok"}`) {
		t.Errorf("/metrics counts no successful request; is it the backend's?\n%s", tail(metrics, 2048))
	}
	pid := s.backend.cmd.Process.Pid
	checkNoCoreDumps(t, "codingplan-backend", pid)
	checkNoCoreDumps(t, "codingplan-lsp", ed.proc.cmd.Process.Pid)
	backendFiles := openFiles(t, pid)
	backendCwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))

	// Positive control for the language server's log: a canary sent with trace "content".
	lspControl := newCanary("lsp control")
	ed.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"codingplan": map[string]any{"trace": "content"}}})
	ed.open("file:///work/project/control.go", "go", "package control // "+lspControl.value+"\n")
	if err := ed.call(ctx, "workspace/executeCommand", map[string]any{"command": "codingplan.status"}, &res); err != nil {
		t.Fatalf("codingplan.status: %v", err)
	}
	stopEditor(ctx, t, ed)
	stopBackend(ctx, t, s)

	// Positive control for MONITOR and the keyspace dump: the test's own keys of every type,
	// written after the backend stopped, so seeing them in MONITOR proves the capture is whole.
	controlKeys := writeControlKeys(ctx, t, s, control.value)
	select {
	case <-mon.fenced:
	case <-ctx.Done():
		t.Fatal("MONITOR never showed the control canary the test wrote")
	}
	mon.stop()
	keys := dumpKeyspace(ctx, t, addr)
	for _, k := range controlKeys {
		_ = s.valkey.Do(context.Background(), s.valkey.B().Del().Key(k).Build()).Error()
	}

	// The search.
	var hits []hit
	var searched []string
	search := func(where string, data []byte, text bool) {
		hits = append(hits, findCanaries(where, data, text, canaries)...)
		searched = append(searched, fmt.Sprintf("%s (%d bytes)", where, len(data)))
	}
	readFile := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	backendLog := readFile(s.backend.stderr)
	lspLog := append(readFile(ed.proc.stderr), readFile(lspLogPath)...)
	capture := readFile(mon.path)
	search("backend log", backendLog, true)
	search("language server log", lspLog, true)
	search("/metrics", metrics, true)
	search("MONITOR capture", capture, true)
	ownKeys, seenControl := 0, map[string]bool{}
	for _, k := range keys {
		search(fmt.Sprintf("Valkey db %d %s key %q", k.db, k.kind, k.key), k.dump, true)
		if strings.HasPrefix(k.key, s.prefix+":") {
			ownKeys++
			if strings.Contains(string(k.dump), control.value) {
				seenControl[k.kind] = true
			} else if k.pttl < 0 {
				t.Errorf("Valkey key %q (%s) has no TTL (PTTL %d)", k.key, k.kind, k.pttl)
			}
		}
	}
	for name, data := range backendFiles {
		search("file the backend held open: "+name, data, false)
	}
	all := func(string, fs.FileInfo) bool { return true }
	for _, d := range []struct{ where, dir string }{
		{"backend state dir", s.stateDir},
		{"backend TMPDIR", filepath.Join(s.dir, "tmp")},
		{"language server HOME, XDG dirs and TMPDIR", filepath.Join(s.dir, "home")},
	} {
		n := walkFiles(t, d.dir, all, func(path string, data []byte) { search(d.where+": "+path, data, false) })
		searched = append(searched, fmt.Sprintf("%s: %d files", d.where, n))
	}
	// Files written anywhere in the system's temp dir or the processes' working dir during
	// the run, but the test's own (the MONITOR capture, the fake provider's log).
	testRoot := filepath.Dir(s.dir)
	recent := func(path string, info fs.FileInfo) bool {
		if info.IsDir() {
			return path != testRoot && path != filepath.Dir(mon.path) && !strings.HasPrefix(filepath.Base(path), "go-build")
		}
		return info.ModTime().After(started) && info.Size() < 64<<20
	}
	n := walkFiles(t, os.TempDir(), recent, func(path string, data []byte) { search("temp dir: "+path, data, false) })
	searched = append(searched, fmt.Sprintf("files changed in %s during the run: %d", os.TempDir(), n))
	if ents, err := os.ReadDir(backendCwd); err == nil {
		for _, e := range ents {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.ModTime().After(started) {
				search("working dir: "+e.Name(), readFile(filepath.Join(backendCwd, e.Name())), false)
			}
		}
	}

	for _, h := range hits {
		t.Errorf("LEAK: %v", h)
	}
	t.Logf("searched %d canaries (%d forms each, at most) in:\n  %s", len(canaries), len(doc.forms()), strings.Join(searched, "\n  "))

	// Positive controls: each search finds what is there.
	if h := findCanaries("language server log", lspLog, true, []canary{lspControl}); len(h) == 0 {
		t.Errorf("the language server's log lacks the canary sent with trace \"content\": the log search would miss a leak")
	}
	if h := findCanaries("MONITOR capture", capture, true, []canary{control}); len(h) == 0 {
		t.Errorf("the MONITOR capture lacks the control canary")
	}
	for _, kind := range []string{"string", "hash", "list", "set", "zset", "stream"} {
		if !seenControl[kind] {
			t.Errorf("the keyspace dump lacks the control canary in the %s key", kind)
		}
	}
	if ownKeys <= len(controlKeys) {
		t.Errorf("the keyspace dump holds no key the backend wrote under %s: (usage counters expected)", s.prefix)
	}
	for _, want := range []string{`"level":"DEBUG"`, `"msg":"stream started"`} {
		if !strings.Contains(string(backendLog), want) {
			t.Errorf("the backend log lacks %s: not at its most verbose level?", want)
		}
	}
	for _, want := range []string{"level=DEBUG", `msg="lsp `} {
		if !strings.Contains(string(lspLog), want) {
			t.Errorf("the language server log lacks %s: debug level and trace \"messages\" expected", want)
		}
	}
}

// retentionModels configures a model per provider kind on the test provider's echo model, a
// model whose error message quotes the prompt, one that sends a malformed stream, and the
// local model trained on a small corpus.
func retentionModels(corpus string) string {
	var b strings.Builder
	for _, m := range []struct{ name, provider, url, model string }{
		{"echo", "openai-chat", "{{provider}}/v1", "echo"},
		{"fim-echo", "openai-completions", "{{provider}}/v1", "echo"},
		{"anthropic-echo", "anthropic", "{{provider}}", "echo"},
		{"upstream-400", "openai-chat", "{{provider}}/v1", "error-400"},
		{"upstream-500", "anthropic", "{{provider}}", "error-500"},
		{"malformed", "openai-chat", "{{provider}}/v1", "malformed"},
	} {
		fmt.Fprintf(&b, "\n[[models]]\nname = %q\nprovider = %q\nbase_url = %q\nmodel = %q\n", m.name, m.provider, m.url, m.model)
	}
	fmt.Fprintf(&b, `
[[models]]
name = "local"
provider = "local"

[models.options]
corpus_dirs = %q
no_goroot = "true"
hold_out_percent = "-1"
min_count = "1"
vocab_min_count = "1"
`, corpus)
	return b.String()
}

// waitEdit waits for the workspace/applyEdit an action sends and checks it carries want.
func waitEdit(ctx context.Context, t *testing.T, edits <-chan json.RawMessage, want, action string) {
	t.Helper()
	select {
	case p := <-edits:
		if !strings.Contains(string(p), want) {
			t.Fatalf("%s applied an edit without the reply canary: %s", action, p)
		}
	case <-ctx.Done():
		t.Fatalf("%s applied no edit", action)
	}
}

func httpGet(ctx context.Context, t *testing.T, url string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return b
}

// checkNoCoreDumps checks that a process may write no core file: RLIMIT_CORE 0 and not
// dumpable (PR_SET_DUMPABLE 0, which also keeps debuggers and /proc/<pid>/mem readers of the
// same user out), both read from outside (see dumpable).
func checkNoCoreDumps(t *testing.T, name string, pid int) {
	t.Helper()
	if soft, hard := coreLimit(t, pid); soft != "0" || hard != "0" {
		t.Errorf("%s may write core dumps: Max core file size %s (soft) %s (hard), want 0 0", name, soft, hard)
	}
	ok, err := dumpable(pid)
	if err != nil {
		t.Fatalf("%s: whether it is dumpable: %v", name, err)
	}
	if ok {
		t.Errorf("%s is dumpable: it did not set PR_SET_DUMPABLE 0", name)
	}
}

// stopEditor ends the language server as an editor does and waits for it to exit.
func stopEditor(ctx context.Context, t *testing.T, ed *editor) {
	t.Helper()
	if err := ed.call(ctx, "shutdown", nil, nil); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	ed.notify("exit", nil)
	select {
	case <-ed.proc.exited:
	case <-ctx.Done():
		t.Fatal("codingplan-lsp did not exit")
	}
}

// stopBackend drains the backend with SIGTERM and waits for it to exit cleanly.
func stopBackend(ctx context.Context, t *testing.T, s *system) {
	t.Helper()
	if err := s.backend.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.backend.exited:
		if s.backend.err != nil {
			t.Errorf("the backend exited with %v", s.backend.err)
		}
	case <-ctx.Done():
		t.Fatal("the backend did not exit after SIGTERM")
	}
}

// writeControlKeys writes value into a key of every type under the system's prefix, with a
// TTL, and returns the keys.
func writeControlKeys(ctx context.Context, t *testing.T, s *system, value string) []string {
	t.Helper()
	c := s.valkey
	k := func(kind string) string { return s.prefix + ":{control}:" + kind }
	cmds := valkeyCommands(c, k, value)
	var keys []string
	for _, kind := range []string{"string", "hash", "list", "set", "zset", "stream"} {
		keys = append(keys, k(kind))
	}
	for _, r := range c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			t.Fatalf("writing the control keys: %v", err)
		}
	}
	return keys
}
