package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/tokens"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	wire "github.com/codingplan/codingplan/shared"
)

// freePort returns a loopback address no one listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// chatStream is an OpenAI-compatible provider that streams "hello" in OpenAI's chat chunk format.
func chatStream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]}`+"\n\n")
		fmt.Fprint(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n")
		fmt.Fprint(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`+"\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRunScript runs scripts/run.sh (what `make run` runs) in a tree of its own, with a temp
// state dir, free ports and a test Valkey: the account service and the backend come up, the
// banner names the key file, the key gets a token through the API-key grant, the token opens a
// websocket to the backend that completes a stream, and SIGINT to the script stops both.
func TestRunScript(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	vk := valkeytest.Start(t)
	tree := t.TempDir()
	for _, d := range []string{"scripts", "bin"} {
		if err := os.Mkdir(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script, err := os.ReadFile("../../../scripts/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "scripts", "run.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(binary, filepath.Join(tree, "bin", "codingplan-accounts")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "build", "-o", filepath.Join(tree, "bin", "codingplan-backend"), "../codingplan-backend").CombinedOutput(); err != nil {
		t.Fatalf("go build codingplan-backend: %v\n%s", err, out)
	}

	backendAddr, accountsAddr := freePort(t), freePort(t)
	// A fresh Valkey, one node: no lease recovery wait (as run.sh does for its own Valkey).
	c := exec.Command(filepath.Join(tree, "scripts", "run.sh"), "--listen", backendAddr, "--lease-recovery-window=-1s")
	c.Env = append(os.Environ(), "HOME="+tree, "XDG_STATE_HOME="+filepath.Join(tree, "state"),
		"CODINGPLAN_CONFIG=", "CODINGPLAN_ACCOUNTS_CONFIG=", "CODINGPLAN_ACCOUNTS_DATABASE=", "CODINGPLAN_JWKS=",
		"CODINGPLAN_VALKEY="+vk.Addr(), "CODINGPLAN_VALKEY_PREFIX=cprunsh",
		"CODINGPLAN_ACCOUNTS_LISTEN="+accountsAddr,
		"CODINGPLAN_OPENAI_BASE_URL="+chatStream(t).URL, "CODINGPLAN_OPENAI_MODEL=fake-1")
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the cleanup can end what the script left
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	banner := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Ctrl-C stops both") {
				banner <- b.String()
			}
		}
	}()
	var text string
	select {
	case text = <-banner:
	case err := <-exited:
		exited <- err
		t.Fatalf("run.sh ended before its banner: %v\n%s", err, stderr.String())
	case <-time.After(120 * time.Second):
		t.Fatalf("no banner:\n%s", stderr.String())
	}

	m := regexp.MustCompile(`\(kept in (\S+)\)`).FindStringSubmatch(text)
	if m == nil || strings.Contains(text, "cpk_") {
		t.Fatalf("the banner does not name the key file, or shows the key on a pipe:\n%s", text)
	}
	if !strings.Contains(text, "ws://"+backendAddr+wire.Path) || !strings.Contains(text, "http://"+accountsAddr+"/v1/token") {
		t.Errorf("banner lacks the addresses:\n%s", text)
	}
	key, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(m[1]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi.Mode(), err)
	}
	code, tok := post(t, http.DefaultClient, "http://"+accountsAddr+"/v1/token",
		url.Values{"grant_type": {tokens.GrantAPIKey}, "api_key": {strings.TrimSpace(string(key))}})
	token, _ := tok["access_token"].(string)
	if code != 200 || token == "" {
		t.Fatalf("api key grant: %d %v", code, tok)
	}
	if exp, _ := tok["expires_in"].(float64); exp < 23*3600 {
		t.Errorf("expires_in %v, want 24h under make run", exp)
	}

	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+backendAddr+wire.Path, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial the backend: %v %v\n%s", err, resp, stderr.String())
	}
	defer ws.Close()
	read := func() wire.ServerFrame {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, data, err := ws.ReadMessage()
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
		Completion: &wire.Completion{Prefix: wire.Text("func hello() {\n\t"), Language: "go"}})
	if err := ws.WriteMessage(websocket.TextMessage, req); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for {
		f := read()
		if f.Type == wire.TypeQueued {
			continue
		}
		if f.Type == wire.TypeDelta {
			got.WriteString(string(f.Text))
			continue
		}
		if f.Type != wire.TypeDone {
			t.Fatalf("got %+v, want done", f)
		}
		break
	}
	if got.String() != "hello" {
		t.Errorf("streamed %q", got.String())
	}
	ws.Close()

	c.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("run.sh after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("run.sh did not stop on SIGINT\n%s", stderr.String())
	}
	// Both services are gone: nothing answers on their ports.
	for _, addr := range []string{backendAddr, accountsAddr} {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still answers after SIGINT", addr)
		}
	}
}
