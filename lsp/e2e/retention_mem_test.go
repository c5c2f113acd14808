package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	wire "github.com/codingplan/codingplan/shared"
)

// idleWindow is how soon after the last response no copy of its content may remain.
const idleWindow = time.Second

// furtherRequests is how many requests with other content follow the canaries on a busy node.
const furtherRequests = 200

// TestMemoryBackend reads codingplan-backend's whole writable address space through
// /proc/PID/mem for three canaries: one in the prompt (an edit's instruction), one in the
// code (selection, prefix, suffix, a snippet) and one in the model's output (the test
// provider's reply), which also comes back as output from the echo models. Targets: no copy
// idleWindow after the last response on an idle node; no copy right after furtherRequests
// requests with other content, with a stream still open; and none again at idle after that.
// Positive control: a canary in a request whose stream is held open is found, so the scan
// can fail.
func TestMemoryBackend(t *testing.T) {
	needRoot(t)
	backendBin, _ := plainBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*deadline)
	defer cancel()
	prompt, code, output := newCanary("prompt"), newCanary("code"), newCanary("output")
	canaries := []canary{prompt, code, output}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := startSystem(t, options{
		reply:   "return " + output.value + " + b",
		config:  echoModels + localModel(filepath.Join(root, "backend/internal/ngram/testdata/corpus")),
		backend: backendBin,
	})
	pid := s.backend.cmd.Process.Pid
	// As root, the backend locks its memory against swap; it says so on /readyz.
	if ready := httpGet(ctx, t, s.httpURL+"/readyz"); !strings.Contains(string(ready), `"memory_lock":"locked"`) {
		t.Errorf("/readyz does not say the memory is locked: %s", ready)
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err != nil || !strings.Contains(string(st), "VmLck:") {
		t.Errorf("reading the backend's status: %v", err)
	} else {
		t.Logf("backend %s", strings.TrimSpace(regexp.MustCompile(`VmLck:.*`).FindString(string(st))))
	}
	token := s.token("memory-"+randHex(4), "max")
	ws := dialWS(ctx, t, s.wsURL, token)

	// Positive control: the content of a stream in flight is in memory.
	control := newCanary("control (a stream held open)")
	ws.send(wire.ClientFrame{Type: wire.TypeRequest, ID: "held", Model: "hang", Op: wire.OpCompletion,
		Completion: &wire.Completion{Prefix: wire.Text("package p\n// " + control.value + "\n"), Language: "go"}})
	if _, err := s.waitEvent(ctx, "start", "hang"); err != nil {
		t.Fatalf("the provider never got the held request: %v", err)
	}
	if r := scanMemory(t, pid, []canary{control}); r.counts[control.label] == 0 {
		t.Fatalf("the scan misses the content of a stream in flight: %s", r.summary())
	} else {
		t.Logf("positive control, a stream in flight: %s", r.summary())
	}
	ws.send(wire.ClientFrame{Type: wire.TypeCancel, ID: "held"})
	if _, end := ws.read(ctx, "held"); end.Code != wire.CodeCanceled {
		t.Fatalf("the held stream ended with %s %s, want canceled", end.Type, end.Code)
	}
	canaries = append(canaries, control)

	// Idle: the canaries' requests, then nothing.
	last := canaryRequests(ctx, t, ws, prompt, code, output)
	r := pollMemory(ctx, t, pid, canaries, last.Add(idleWindow))
	t.Logf("idle, %v after the last response: %s", time.Since(last).Round(time.Millisecond), r.summary())
	if r.total() > 0 {
		t.Errorf("copies of request content remain %v after the last response on an idle node", idleWindow)
	}

	// Busy: the canaries again, then requests with other content from several connections,
	// and a stream still open while the memory is read.
	canaryRequests(ctx, t, ws, prompt, code, output)
	ws.send(wire.ClientFrame{Type: wire.TypeRequest, ID: "busy", Model: "hang", Op: wire.OpCompletion,
		Completion: &wire.Completion{Prefix: wire.Text("package p\n// " + randHex(16) + "\n"), Language: "go"}})
	if _, err := s.waitEvent(ctx, "start", "hang"); err != nil {
		t.Fatalf("the provider never got the busy stream: %v", err)
	}
	if err := otherRequests(ctx, s.wsURL, token, furtherRequests, 4); err != nil {
		t.Fatalf("requests with other content: %v", err)
	}
	r = scanMemory(t, pid, canaries)
	t.Logf("busy, right after %d requests with other content, one stream open: %s", furtherRequests, r.summary())
	if r.total() > 0 {
		t.Errorf("copies of request content remain after %d requests with other content", furtherRequests)
	}
	ws.send(wire.ClientFrame{Type: wire.TypeCancel, ID: "busy"})
	_, end := ws.read(ctx, "busy")
	last = time.Now()
	if end.Code != wire.CodeCanceled {
		t.Fatalf("the busy stream ended with %s %s, want canceled", end.Type, end.Code)
	}
	r = pollMemory(ctx, t, pid, canaries, last.Add(idleWindow))
	t.Logf("idle again, %v after the last response: %s", time.Since(last).Round(time.Millisecond), r.summary())
	if r.total() > 0 {
		t.Errorf("copies of request content remain %v after the node fell idle", idleWindow)
	}
}

// echoModels are models on the test provider's echo model, one per provider kind: their
// output is the prompt they were sent.
const echoModels = `
[[models]]
name = "echo"
provider = "openai-chat"
base_url = "{{provider}}/v1"
model = "echo"

[[models]]
name = "fim-echo"
provider = "openai-completions"
base_url = "{{provider}}/v1"
model = "echo"

[[models]]
name = "anthropic-echo"
provider = "anthropic"
base_url = "{{provider}}"
model = "echo"
`

// localModel configures the local n-gram model, trained on corpus.
func localModel(corpus string) string {
	return fmt.Sprintf(`
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
}

// canaryRequests sends the canaries in a completion and an edit to the test model (whose
// reply is the output canary) and in an edit to each echo model, which streams the code and
// prompt canaries back as output. It returns when the last response ended.
func canaryRequests(ctx context.Context, t *testing.T, ws *wsConn, prompt, code, output canary) time.Time {
	t.Helper()
	p, c := wire.Text(prompt.value), wire.Text(code.value)
	completion := &wire.Completion{
		Prefix:   "package calc\n\n// " + c + "\nfunc f() string {\n\tx := \"" + c + "\"\n\treturn ",
		Suffix:   "\n}\n// " + c + "\n",
		Language: "go", Path: "calc/f.go",
		Snippets: []wire.Snippet{{Path: "calc/g.go", Text: "var g = `" + c + "`"}},
	}
	edit := &wire.Edit{
		Instruction: "Explain this, then " + p, Selection: "x := \"" + c + "\"", Prefix: "// " + c + "\n", Suffix: "\n// " + c,
		Language: "go", Path: "calc/f.go", Diagnostics: []wire.Text{"declared and not used: " + c},
	}
	for i, req := range []struct {
		model string
		f     wire.ClientFrame
		want  []canary
	}{
		{"local", wire.ClientFrame{Op: wire.OpCompletion, Completion: completion}, nil},
		{"echo", wire.ClientFrame{Op: wire.OpEdit, Edit: edit}, []canary{prompt, code}},
		{"fim-echo", wire.ClientFrame{Op: wire.OpCompletion, Completion: completion}, []canary{code}},
		{"anthropic-echo", wire.ClientFrame{Op: wire.OpEdit, Edit: edit}, []canary{prompt, code}},
		// Last, so that the provider connection's buffers end with it: the echo models stream
		// in pieces shorter than a canary, this reply has the output canary whole.
		{"test", wire.ClientFrame{Op: wire.OpEdit, Edit: edit}, []canary{output}},
		{"test", wire.ClientFrame{Op: wire.OpCompletion, Completion: completion}, []canary{output}},
	} {
		f := req.f
		f.Type, f.ID, f.Model = wire.TypeRequest, fmt.Sprintf("canary-%d", i), req.model
		out, end := ws.stream(ctx, f)
		if end.Type != wire.TypeDone {
			t.Fatalf("%s %s: ended with %s %s, want done", req.model, f.Op, end.Type, end.Code)
		}
		for _, w := range req.want { // positive control: the content made the round trip
			if !strings.Contains(out, w.value) {
				t.Fatalf("%s %s: the reply lacks the %s canary", req.model, f.Op, w.label)
			}
		}
	}
	return time.Now()
}

// otherRequests sends n requests with fresh random content to the echo models over conns
// connections at once, each reading its streams to the end.
func otherRequests(ctx context.Context, url, token string, n, conns int) error {
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- otherRequestsOn(ctx, url, token, c, (n+conns-1-c)/conns)
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

func otherRequestsOn(ctx context.Context, url, token string, conn, n int) error {
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.DialContext(ctx, url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		return err
	}
	defer ws.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(dl)
	}
	models := []string{"echo", "fim-echo", "anthropic-echo"}
	for i := range n {
		other := wire.Text(strings.Repeat("other content "+randHex(12)+"\n", 4))
		f := wire.ClientFrame{Type: wire.TypeRequest, ID: fmt.Sprintf("other-%d-%d", conn, i), Model: models[i%len(models)]}
		if i%2 == 0 {
			f.Op, f.Completion = wire.OpCompletion, &wire.Completion{Prefix: "package p\n// " + other, Suffix: other, Language: "go"}
		} else {
			f.Op, f.Edit = wire.OpEdit, &wire.Edit{Instruction: "Explain " + other, Selection: other, Language: "go"}
		}
		b, err := wire.Marshal(f)
		if err != nil {
			return err
		}
		if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
			return err
		}
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return fmt.Errorf("%s: %w", f.ID, err)
			}
			sf, err := wire.DecodeServer(data)
			if err != nil {
				return err
			}
			if sf.ID != f.ID || sf.Type == wire.TypeDelta || sf.Type == wire.TypeQueued {
				continue
			}
			if sf.Type != wire.TypeDone {
				return fmt.Errorf("%s: ended with %s %s", f.ID, sf.Type, sf.Code)
			}
			break
		}
	}
	return nil
}

// TestMemoryLanguageServer reads codingplan-lsp's whole writable address space for the canary
// of a document the editor opened, edited, completed in (with the echo model, so the model's
// output holds the canary too) and asked Explain about, then closed. Targets: no copy
// idleWindow after didClose, and none after furtherRequests requests on another document.
// Positive control: the canary is found while the document is open.
func TestMemoryLanguageServer(t *testing.T) {
	needRoot(t)
	backendBin, lspBin := plainBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*deadline)
	defer cancel()
	s := startSystem(t, options{reply: "a + b", config: echoModels, backend: backendBin})
	token := s.token("memory-lsp-"+randHex(4), "max")
	ed := s.startEditorOpts(map[string]any{"token": token, "model": "echo"}, editorOptions{bin: lspBin})
	if err := ed.waitReady(ctx); err != nil {
		t.Fatalf("the server never said it is ready: %v", err)
	}
	pid := ed.proc.cmd.Process.Pid
	doc := newCanary("closed document")
	canaries := []canary{doc}

	const uri = "file:///work/project/calc/secret.go"
	text := "package calc\n\n// " + doc.value + " in a comment.\nvar s = \"" + doc.value + "\"\n\nfunc add(a, b int) int {\n\treturn \n}\n"
	ed.open(uri, "go", text)
	ed.notify("textDocument/didChange", map[string]any{
		"textDocument":   map[string]any{"uri": uri, "version": 2},
		"contentChanges": []any{map[string]any{"range": lspRange{Start: position{Line: 6, Character: 8}, End: position{Line: 6, Character: 8}}, "text": "a"}},
	})
	cursor := position{Line: 6, Character: len("\treturn a")}
	var list struct{ Items []inlineItem }
	if err := ed.call(ctx, "textDocument/inlineCompletion", inlineParams(uri, cursor), &list); err != nil {
		t.Fatalf("inlineCompletion: %v", err)
	}
	if len(list.Items) == 0 {
		t.Fatalf("no completion")
	}
	// Explain with the echo model shows the prompt it was sent: the canary comes back as the
	// model's output.
	var res json.RawMessage
	line := lspRange{Start: position{Line: 3}, End: position{Line: 3, Character: 10}}
	if err := ed.call(ctx, "workspace/executeCommand", map[string]any{"command": "codingplan.runAction",
		"arguments": []any{map[string]any{"uri": uri, "range": line, "kind": "refactor.codingplan.explain"}}}, &res); err != nil {
		t.Fatalf("Explain: %v", err)
	}
	if _, err := ed.waitNote(ctx, "window/showMessage", func(p json.RawMessage) bool { return strings.Contains(string(p), doc.value) }); err != nil {
		t.Fatalf("Explain with the echo model never showed the document's canary: %v", err)
	}
	if r := scanMemory(t, pid, canaries); r.total() == 0 {
		t.Fatalf("the scan misses an open document's content: %s", r.summary())
	} else {
		t.Logf("positive control, the document open: %s", r.summary())
	}

	ed.notify("textDocument/didClose", map[string]any{"textDocument": map[string]any{"uri": uri}})
	// A request answered after didClose proves the server has handled it.
	if err := ed.call(ctx, "workspace/executeCommand", map[string]any{"command": "codingplan.status"}, &res); err != nil {
		t.Fatalf("codingplan.status: %v", err)
	}
	closed := time.Now()
	r := pollMemory(ctx, t, pid, canaries, closed.Add(idleWindow))
	t.Logf("%v after didClose: %s", time.Since(closed).Round(time.Millisecond), r.summary())
	if r.total() > 0 {
		t.Errorf("copies of a closed document remain %v after didClose", idleWindow)
	}

	// More requests, on another document.
	const other = "file:///work/project/calc/other.go"
	ed.open(other, "go", "package calc\n\nfunc sub(a, b int) int {\n\treturn \n}\n")
	for i := range furtherRequests {
		line := fmt.Sprintf("// other %d %s\n", i, randHex(8))
		ed.notify("textDocument/didChange", map[string]any{
			"textDocument":   map[string]any{"uri": other, "version": i + 2},
			"contentChanges": []any{map[string]any{"range": lspRange{Start: position{Line: 1}, End: position{Line: 1}}, "text": line}},
		})
		if err := ed.call(ctx, "textDocument/inlineCompletion", inlineParams(other, position{Line: 4 + i, Character: 8}), &list); err != nil {
			t.Fatalf("inlineCompletion %d: %v", i, err)
		}
	}
	r = scanMemory(t, pid, canaries)
	t.Logf("after %d more requests on another document: %s", furtherRequests, r.summary())
	if r.total() > 0 {
		t.Errorf("copies of a closed document remain after %d more requests", furtherRequests)
	}
}
