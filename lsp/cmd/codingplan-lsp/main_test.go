package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests build the real binary and drive it over its stdio as an editor does.

const deadline = 20 * time.Second

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "codingplan-lsp-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "codingplan-lsp")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type msg struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// proc is the running binary with an LSP client on its stdio.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	msgs   chan msg // everything the server wrote, in order
	bad    chan error
	exited chan struct{}
	mu     sync.Mutex
	nextID int
}

func start(t *testing.T, env ...string) *proc {
	t.Helper()
	p := &proc{t: t, msgs: make(chan msg, 256), bad: make(chan error, 1), exited: make(chan struct{})}
	p.cmd = exec.Command(binary, "--log-level", "debug")
	p.cmd.Env = append(os.Environ(), "CODINGPLAN_TOKEN=", "CODINGPLAN_BACKEND_URL=ws://127.0.0.1:9/v1/ws")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.read(stdout)
	t.Cleanup(func() {
		p.stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(deadline):
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// read parses stdout: every byte must be an LSP frame holding JSON-RPC.
func (p *proc) read(r io.Reader) {
	defer func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	br := bufio.NewReader(r)
	tp := textproto.NewReader(br)
	for {
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				p.bad <- fmt.Errorf("stdout is not LSP: %v", err)
			}
			return
		}
		n, err := strconv.Atoi(h.Get("Content-Length"))
		if err != nil {
			p.bad <- fmt.Errorf("frame without Content-Length: %v", h)
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			p.bad <- err
			return
		}
		var m msg
		if err := json.Unmarshal(body, &m); err != nil {
			p.bad <- fmt.Errorf("stdout frame is not JSON: %q", body)
			return
		}
		p.msgs <- m
	}
}

func (p *proc) send(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(p.stdin, "Content-Length: %d\r\n\r\n%s", len(b), b)
}

// call sends a request and returns its response, skipping other messages.
func (p *proc) call(method string, params any) msg {
	p.t.Helper()
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	p.mu.Unlock()
	p.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	return p.until(func(m msg) bool { return m.Method == "" && string(m.ID) == strconv.Itoa(id) })
}

func (p *proc) notify(method string, params any) {
	p.send(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

func (p *proc) until(match func(msg) bool) msg {
	p.t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case m := <-p.msgs:
			if match(m) {
				return m
			}
		case err := <-p.bad:
			p.t.Fatal(err)
		case <-timeout:
			p.t.Fatalf("timed out; stderr:\n%s", p.stderr.String())
		}
	}
}

func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(deadline):
		p.t.Fatal("the server did not exit")
	}
	return -1
}

func TestSession(t *testing.T) {
	const canary = "CANARY_lsp_binary_5e1"
	p := start(t)
	init := p.call("initialize", map[string]any{"processId": os.Getpid(), "rootUri": "file:///work",
		"capabilities": map[string]any{"general": map[string]any{"positionEncodings": []string{"utf-16", "utf-8"}},
			"textDocument": map[string]any{"inlineCompletion": map[string]any{}}}})
	if init.Error != nil || !strings.Contains(string(init.Result), `"positionEncoding":"utf-8"`) ||
		!strings.Contains(string(init.Result), `"inlineCompletionProvider"`) {
		t.Fatalf("initialize = %s %+v", init.Result, init.Error)
	}
	p.notify("initialized", map[string]any{})
	st := p.until(func(m msg) bool { return m.Method == "codingplan/status" })
	if !strings.Contains(string(st.Params), `"state":"signedOut"`) {
		t.Errorf("status = %s, want signedOut without a token", st.Params)
	}

	p.notify("textDocument/didOpen", map[string]any{"textDocument": map[string]any{"uri": "file:///work/a.go",
		"languageId": "go", "version": 1, "text": "package a\n\n// " + canary + "\nfunc f() {\n\t\n}\n"}})
	p.notify("textDocument/didChange", map[string]any{"textDocument": map[string]any{"uri": "file:///work/a.go", "version": 2},
		"contentChanges": []any{map[string]any{"range": map[string]any{"start": map[string]any{"line": 4, "character": 1},
			"end": map[string]any{"line": 4, "character": 1}}, "text": "x"}}})
	// Signed out: an empty answer at once, not a hang.
	start := time.Now()
	r := p.call("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": "file:///work/a.go"},
		"position": map[string]any{"line": 4, "character": 2}, "context": map[string]any{"triggerKind": 1}})
	if r.Error != nil || string(r.Result) != `{"items":[]}` {
		t.Errorf("inline completion = %s %+v", r.Result, r.Error)
	}
	t.Logf("signed-out inline completion answered in %v", time.Since(start))

	if r := p.call("textDocument/hover", map[string]any{}); r.Error == nil || r.Error.Code != -32601 {
		t.Errorf("hover = %+v, want MethodNotFound", r)
	}
	if r := p.call("textDocument/inlineCompletion", map[string]any{"textDocument": map[string]any{"uri": "file:///work/a.go"},
		"position": map[string]any{"line": 99, "character": 0}}); r.Error == nil || r.Error.Code != -32602 {
		t.Errorf("position past the end = %+v, want InvalidParams", r)
	}
	fmt.Fprintf(p.stdin, "Content-Length: 3\r\n\r\n{{{")
	if m := p.until(func(m msg) bool { return m.Error != nil && m.Error.Code == -32700 }); string(m.ID) != "null" {
		t.Errorf("parse error id = %s", m.ID)
	}

	p.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"codingplan": map[string]any{"enable": false}}})
	// A status the backend connection reported just before may still be on its way: the next
	// one that says disabled must come.
	p.until(func(m msg) bool {
		return m.Method == "codingplan/status" && strings.Contains(string(m.Params), `"state":"disabled"`)
	})

	if r := p.call("shutdown", nil); r.Error != nil || string(r.Result) != "null" {
		t.Errorf("shutdown = %s %+v", r.Result, r.Error)
	}
	if r := p.call("textDocument/completion", map[string]any{}); r.Error == nil || r.Error.Code != -32600 {
		t.Errorf("request after shutdown = %+v, want InvalidRequest", r)
	}
	p.notify("exit", nil)
	if code := p.wait(); code != 0 {
		t.Errorf("exit code %d after shutdown and exit, want 0; stderr:\n%s", code, p.stderr.String())
	}
	if strings.Contains(p.stderr.String(), canary) {
		t.Errorf("the log holds document content:\n%s", p.stderr.String())
	}
}

func TestExitCodes(t *testing.T) {
	t.Run("exit without shutdown", func(t *testing.T) {
		p := start(t)
		p.call("initialize", map[string]any{"capabilities": map[string]any{}})
		p.notify("exit", nil)
		if code := p.wait(); code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
	})
	t.Run("input closed", func(t *testing.T) {
		p := start(t)
		p.call("initialize", map[string]any{"capabilities": map[string]any{}})
		p.stdin.Close()
		if code := p.wait(); code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
	})
	t.Run("before initialize", func(t *testing.T) {
		p := start(t)
		if r := p.call("shutdown", nil); r.Error == nil || r.Error.Code != -32002 {
			t.Errorf("shutdown before initialize = %+v, want ServerNotInitialized", r)
		}
		p.notify("exit", nil)
		if code := p.wait(); code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
	})
}

// TestBrokenFraming: each way the base protocol's framing can break on stdin ends the server
// with a window/logMessage error naming the problem, the same line on stderr, and exit status
// 3 (docs/configuration.md). Some cases break only at the end of the input.
func TestBrokenFraming(t *testing.T) {
	tests := []struct {
		name, input string
		closeInput  bool   // the problem shows only once the input ends
		want        string // in the message
	}{
		{"garbage header", "hello world\r\n\r\n", false, `is not "Name: value"`},
		{"Content-Length abc", "Content-Length: abc\r\n\r\n{}", false, `Content-Length "abc" is not a length`},
		{"Content-Length -1", "Content-Length: -1\r\n\r\n{}", false, `Content-Length "-1" is not a length`},
		{"Content-Length empty", "Content-Length:\r\n\r\n{}", false, `Content-Length "" is not a length`},
		{"Content-Length 2^64", "Content-Length: 18446744073709551616\r\n\r\n{}", false, "is not a length"},
		{"Content-Length 2^63", "Content-Length: 9223372036854775808\r\n\r\n{}", false, "is not a length"},
		{"Content-Length hex", "Content-Length: 0x10\r\n\r\n{}", false, "is not a length"},
		{"missing Content-Length", "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}", false, "without Content-Length"},
		{"two Content-Lengths", "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", false, "two Content-Length"},
		{"long header line", "X-Junk: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", false, "longer than"},
		{"no line end", strings.Repeat("b", 80<<10), false, "longer than"},
		{"body shorter than Content-Length", "Content-Length: 100\r\n\r\n{}", true, "inside a message's body"},
		{"input ends in the headers", "Content-Length: 10\r\n", true, "inside a message's headers"},
		{"Content-Length 2^63-1", "Content-Length: 9223372036854775807\r\n\r\n{}", true, "inside a message's body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t)
			p.call("initialize", map[string]any{"capabilities": map[string]any{}})
			// The server may stop reading before all of it is written (a broken pipe then).
			_, _ = io.WriteString(p.stdin, tt.input)
			if tt.closeInput {
				p.stdin.Close()
			}
			m := p.until(func(m msg) bool { return m.Method == "window/logMessage" })
			var params struct {
				Type    int    `json:"type"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(m.Params, &params); err != nil {
				t.Fatal(err)
			}
			if params.Type != 1 || !strings.Contains(params.Message, "broken message framing") || !strings.Contains(params.Message, tt.want) {
				t.Errorf("window/logMessage = %+v, want an error (type 1) saying broken message framing: ...%s", params, tt.want)
			}
			if code := p.wait(); code != 3 {
				t.Errorf("exit code %d, want 3", code)
			}
			if want := "codingplan-lsp: stopping: broken message framing"; !strings.Contains(p.stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, p.stderr.String())
			}
		})
	}
}

func TestFlags(t *testing.T) {
	out, err := exec.Command(binary, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "codingplan-lsp ") {
		t.Errorf("--version: %q, %v", out, err)
	}
	for _, args := range [][]string{{"--nope"}, {"--log-level", "loud"}, {"extra"}} {
		err := exec.Command(binary, args...).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit code 2", args, err)
		}
	}
	dir := t.TempDir()
	logFile := filepath.Join(dir, "lsp.log")
	cmd := exec.Command(binary, "--stdio", "--log-file", logFile)
	cmd.Stdin = strings.NewReader("Content-Length: 33\r\n\r\n{\"jsonrpc\":\"2.0\",\"method\":\"exit\"}")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run()
	if fi, err := os.Stat(logFile); err != nil || fi.Mode().Perm() != 0o600 || stderr.Len() != 0 {
		t.Errorf("--log-file: %v %v, stderr %q", fi, err, stderr.String())
	}
}

// TestLogLevels: without --log-file the log reaches the editor as window/logMessage at each
// record's level (a warning as MessageType 2, not as stderr, which editors file as errors),
// and stderr gets no info or debug line.
func TestLogLevels(t *testing.T) {
	p := start(t)
	if r := p.call("initialize", map[string]any{"processId": os.Getpid(), "rootUri": "file:///work", "capabilities": map[string]any{}}); r.Error != nil {
		t.Fatalf("initialize: %+v", r.Error)
	}
	p.notify("initialized", map[string]any{})
	p.notify("workspace/didChangeConfiguration", map[string]any{"settings": map[string]any{"codingplan": map[string]any{"maxTokens": -5}}})
	var log struct {
		Type    int    `json:"type"`
		Message string `json:"message"`
	}
	p.until(func(m msg) bool {
		if m.Method != "window/logMessage" {
			return false
		}
		if err := json.Unmarshal(m.Params, &log); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(log.Message, "settings not used")
	})
	if log.Type != 2 || strings.Contains(log.Message, "level=") || strings.Contains(log.Message, "time=") {
		t.Errorf("warning sent as %+v, want type 2 without time and level", log)
	}
	if r := p.call("shutdown", nil); r.Error != nil {
		t.Fatalf("shutdown: %+v", r.Error)
	}
	p.notify("exit", nil)
	if code := p.wait(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	for _, level := range []string{"level=INFO", "level=DEBUG"} {
		if strings.Contains(p.stderr.String(), level) {
			t.Errorf("stderr holds a %s line, which editors show as an error:\n%s", level, p.stderr.String())
		}
	}
}
