// Package e2e runs the real codingplan-backend binary, several nodes at once, against a Valkey
// server the test owns (so it can kill, stop and restart it) and a fake model provider that
// counts what it sees.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/valkeytest"
)

// binDir holds codingplan-backend and codingplan-accounts, built by TestMain with the race
// detector on.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "codingplan-backend-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("go", "build", "-race", "-o", dir+"/", "../cmd/codingplan-backend", "../cmd/codingplan-accounts")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building codingplan-backend and codingplan-accounts: %v\n%s", err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}

// waitFor polls cond every 10 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// node is one codingplan-backend process on a fixed port, so that it can be killed and
// started again at the same address.
type node struct {
	t      *testing.T
	name   string
	port   int
	args   []string
	logDir string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exit   chan error
	kills  int // how many times it was killed
	starts int
}

func newNode(t *testing.T, name, logDir string, args ...string) *node {
	n := &node{t: t, name: name, port: valkeytest.FreePort(t), args: args, logDir: logDir}
	n.start()
	t.Cleanup(func() { n.kill() })
	return n
}

func (n *node) wsURL() string { return "ws://127.0.0.1:" + strconv.Itoa(n.port) + "/v1/ws" }

// start runs the node and waits until it listens.
func (n *node) start() {
	n.t.Helper()
	n.mu.Lock()
	n.starts++
	logPath := filepath.Join(n.logDir, fmt.Sprintf("%s.%d.log", n.name, n.starts))
	n.mu.Unlock()
	log, err := os.Create(logPath)
	if err != nil {
		n.t.Fatal(err)
	}
	args := append([]string{"serve", "--listen", "127.0.0.1:" + strconv.Itoa(n.port)}, n.args...)
	cmd := exec.Command(filepath.Join(binDir, "codingplan-backend"), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start %s: %v", n.name, err)
	}
	listening := make(chan struct{})
	exit := make(chan error, 1)
	go func() { // owned by kill, through exit
		var once sync.Once
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = log.Write(append(line, '\n'))
			if bytes.Contains(line, []byte(`"msg":"listening"`)) {
				once.Do(func() { close(listening) })
			}
		}
		log.Close()
		exit <- cmd.Wait()
	}()
	select {
	case <-listening:
	case err := <-exit:
		n.t.Fatalf("%s exited before listening: %v (log %s)", n.name, err, logPath)
	case <-time.After(30 * time.Second):
		n.t.Fatalf("%s did not listen within 30s (log %s)", n.name, logPath)
	}
	n.mu.Lock()
	n.cmd, n.exit = cmd, exit
	n.mu.Unlock()
}

// kill ends the node with SIGKILL, as a crash would, and waits for it.
func (n *node) kill() {
	n.mu.Lock()
	cmd, exit := n.cmd, n.exit
	n.cmd = nil
	if cmd != nil {
		n.kills++
	}
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exit
}

// killCount is how many times the node was killed so far.
func (n *node) killCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.kills
}

// logsContain counts the log lines of every run of the node that contain s.
func (n *node) logsContain(s string) int {
	n.mu.Lock()
	starts := n.starts
	n.mu.Unlock()
	count := 0
	for i := 1; i <= starts; i++ {
		b, err := os.ReadFile(filepath.Join(n.logDir, fmt.Sprintf("%s.%d.log", n.name, i)))
		if err != nil {
			continue
		}
		count += bytes.Count(b, []byte(s))
	}
	return count
}

// logTimes returns the times of the log lines (of every run of the node) that contain s.
func (n *node) logTimes(s string) []time.Time {
	n.mu.Lock()
	starts := n.starts
	n.mu.Unlock()
	var out []time.Time
	for i := 1; i <= starts; i++ {
		b, err := os.ReadFile(filepath.Join(n.logDir, fmt.Sprintf("%s.%d.log", n.name, i)))
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if !bytes.Contains(line, []byte(s)) {
				continue
			}
			var l struct{ Time time.Time }
			if json.Unmarshal(line, &l) == nil {
				out = append(out, l.Time)
			}
		}
	}
	return out
}

// dirs makes the test's directories: its own temp dir, the state dir its nodes share (and so
// their development key), and the dir of the nodes' logs (CODINGPLAN_E2E_LOGS keeps them).
func dirs(t *testing.T) (dir, stateDir, logDir string) {
	t.Helper()
	dir = t.TempDir()
	logDir = os.Getenv("CODINGPLAN_E2E_LOGS")
	if logDir == "" {
		logDir = filepath.Join(dir, "logs")
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, "state"), logDir
}

// writeConfig writes the nodes' backend.toml into dir and returns its path.
func writeConfig(t *testing.T, dir, config string) string {
	t.Helper()
	path := filepath.Join(dir, "backend.toml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeModelConfig is a backend config on Valkey addr with key prefix, the plans lite, pro and
// max, and one model, "fake", served by the OpenAI-compatible provider at providerURL.
func fakeModelConfig(addr, prefix, providerURL string) string {
	return fmt.Sprintf(`valkey = %q
valkey_prefix = %q
drain_timeout = "2s"
default_model = "fake"

[plans.lite]
concurrency = 1
[plans.pro]
concurrency = 3
[plans.max]
concurrency = 10

[[models]]
name = "fake"
provider = "openai-chat"
base_url = %q
model = "fake"
`, addr, prefix, providerURL+"/v1")
}

// mintToken makes a development token with the backend's own subcommand; every node shares
// the state dir, hence the key.
func mintToken(t *testing.T, cfgPath, stateDir, user, plan string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "codingplan-backend"), "token", "--sub", user, "--plan", plan,
		"--config", cfgPath, "--state-dir", stateDir).Output()
	if err != nil {
		t.Fatalf("codingplan-backend token: %v", err)
	}
	return strings.TrimSpace(string(out))
}
