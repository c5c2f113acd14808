// Package e2e drives the whole system as an editor does: it builds the real binaries, starts a
// private backend on a real Valkey with the test provider (a stand-in for the paid model APIs that
// speaks their wire format byte for byte), and talks LSP to codingplan-lsp over its stdio.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// binDir holds the binaries TestMain builds, with the race detector on.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "codingplan-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	args := []string{"build", "-race", "-o", dir + "/",
		"./lsp/cmd/codingplan-lsp", "./backend/cmd/codingplan-backend", "./backend/cmd/codingplan-fakeprovider",
		"./backend/cmd/codingplan-accounts"}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOEXPERIMENT=runtimesecret") // as make build: see lsp/internal/erase
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the binaries: %v\n%s", err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// proc is a running binary whose output goes to files a test can search afterwards.
type proc struct {
	cmd    *exec.Cmd
	stderr string // path of the captured standard error
	// errLines holds standard error's lines as they come.
	errLines *lineWaiter
	exited   chan struct{}
	err      error
}

// startProc starts a binary from binDir, or the one name is the absolute path of. Its standard error goes to logDir/name.stderr and to
// p.errLines; stdin and stdout are the caller's to wire (nil means none). The process is killed
// when the test ends, if it is still running.
func startProc(t *testing.T, logDir, name string, env []string, stdin io.Reader, stdout io.Writer, args ...string) *proc {
	t.Helper()
	path := filepath.Join(binDir, name)
	if filepath.IsAbs(name) { // a binary built elsewhere (see plainBinaries)
		path, name = name, filepath.Base(name)
	}
	errPath := filepath.Join(logDir, name+".stderr")
	errFile, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, io.MultiWriter(errFile, pw)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{cmd: cmd, stderr: errPath, exited: make(chan struct{}), errLines: newLineWaiter(pr)}
	go func() {
		p.err = cmd.Wait()
		errFile.Close()
		pw.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			if b, err := os.ReadFile(errPath); err == nil && len(b) > 0 {
				t.Logf("%s stderr (last 4 KiB):\n%s", name, tail(b, 4096))
			}
		}
	})
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// lineWaiter collects a process's output lines and lets a test wait for one that matches.
type lineWaiter struct {
	mu    sync.Mutex
	lines []string
	cond  chan struct{} // closed and replaced on every new line
}

func newLineWaiter(r io.Reader) *lineWaiter {
	w := &lineWaiter{cond: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			close(w.cond)
			w.cond = make(chan struct{})
			w.mu.Unlock()
		}
	}()
	return w
}

// wait returns the first line, from the start, for which match is true.
func (w *lineWaiter) wait(ctx context.Context, match func(string) bool) (string, error) {
	i, err := w.waitFrom(ctx, 0, match)
	if err != nil {
		return "", err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lines[i], nil
}

// waitFrom returns the index of the first line at or after from for which match is true.
func (w *lineWaiter) waitFrom(ctx context.Context, from int, match func(string) bool) (int, error) {
	for i := from; ; {
		w.mu.Lock()
		for ; i < len(w.lines); i++ {
			if match(w.lines[i]) {
				w.mu.Unlock()
				return i, nil
			}
		}
		cond := w.cond
		w.mu.Unlock()
		select {
		case <-cond:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// grepFiles returns the files under dirs (recursively) that contain needle.
func grepFiles(t *testing.T, needle []byte, dirs ...string) []string {
	t.Helper()
	var hits []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if bytes.Contains(b, needle) {
				hits = append(hits, path)
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatalf("searching %s: %v", dir, err)
		}
	}
	return hits
}

// deadline is the generous bound every wait in these tests gets: waits end on events, and the
// deadline only turns a hang into a failure.
const deadline = 30 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}
