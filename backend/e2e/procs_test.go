// Package e2e runs the real codingplan-backend binary, several nodes at once, against a Valkey
// server the test owns (so it can kill, stop and restart it) and a fake model provider that
// counts what it sees.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds codingplan-backend, built by TestMain with the race detector on.
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
	cmd := exec.Command("go", "build", "-race", "-o", dir+"/", "../cmd/codingplan-backend")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building codingplan-backend: %v\n%s", err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
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

// valkeyProc is a valkey-server the test owns, on a fixed port so it can come back after a
// kill. It keeps nothing on disk, like the servers make test starts: a restart loses every key.
type valkeyProc struct {
	t    *testing.T
	port int
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan error
}

func startValkey(t *testing.T) *valkeyProc {
	t.Helper()
	if _, err := exec.LookPath("valkey-server"); err != nil {
		if os.Getenv("CODINGPLAN_REQUIRE_VALKEY") == "1" {
			t.Fatal("valkey-server is not installed")
		}
		t.Skip("valkey-server is not installed (scripts/valkey.sh install)")
	}
	v := &valkeyProc{t: t, port: freePort(t), dir: t.TempDir()}
	v.start()
	t.Cleanup(func() { v.signal(syscall.SIGCONT); v.stop(syscall.SIGKILL) })
	return v
}

func (v *valkeyProc) addr() string { return "127.0.0.1:" + strconv.Itoa(v.port) }

func (v *valkeyProc) start() {
	v.t.Helper()
	cmd := exec.Command("valkey-server", "--port", strconv.Itoa(v.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", v.dir, "--logfile", filepath.Join(v.dir, "valkey.log"))
	if err := cmd.Start(); err != nil {
		v.t.Fatalf("start valkey-server: %v", err)
	}
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }() // owned by stop
	v.mu.Lock()
	v.cmd, v.exit = cmd, exit
	v.mu.Unlock()
	waitFor(v.t, 10*time.Second, "valkey-server to answer PING", func() bool {
		c, err := net.DialTimeout("tcp", v.addr(), time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return false
		}
		b := make([]byte, 7)
		n, _ := c.Read(b)
		return bytes.HasPrefix(b[:n], []byte("+PONG"))
	})
}

// stop ends the server with sig (SIGTERM: a clean shutdown that saves nothing; SIGKILL) and
// waits for it.
func (v *valkeyProc) stop(sig syscall.Signal) {
	v.mu.Lock()
	cmd, exit := v.cmd, v.exit
	v.cmd = nil
	v.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	<-exit
}

// signal sends sig (SIGSTOP, SIGCONT) to the running server.
func (v *valkeyProc) signal(sig syscall.Signal) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cmd != nil {
		_ = v.cmd.Process.Signal(sig)
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
	n := &node{t: t, name: name, port: freePort(t), args: args, logDir: logDir}
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
