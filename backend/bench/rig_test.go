package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rig is the system under measurement: the test provider and a backend in front of it, both
// real processes built without the race detector, on the Valkey in CODINGPLAN_TEST_VALKEY.
type rig struct {
	dir         string
	state       string // the backend's state directory (its development signing key)
	providerURL string // the provider's root
	httpURL     string // the backend's
	wsURL       string
	token       string // for a user on plan "bench", which allows 1024 streams at once
	backend     *exec.Cmd
	procs       []*exec.Cmd
	logDone     chan struct{} // closed when the backend's log is copied to the end
}

var (
	// rigConfig is added to the backend's configuration; a test sets it before getRig.
	rigConfig string

	rigOnce sync.Once
	theRig  *rig
	rigErr  error
)

func TestMain(m *testing.M) {
	if os.Getenv(floorEnv) == "1" {
		serveFloor() // the floor of the idle measurements: a process of its own
	}
	code := m.Run()
	if theRig != nil {
		theRig.stop()
	}
	os.Exit(code)
}

// getRig starts the rig on first use; benchmarks share it.
func getRig(b testing.TB) *rig {
	b.Helper()
	addr := os.Getenv("CODINGPLAN_TEST_VALKEY")
	if addr == "" {
		if os.Getenv("CODINGPLAN_REQUIRE_VALKEY") != "" {
			b.Fatal("CODINGPLAN_TEST_VALKEY is not set")
		}
		b.Skip("CODINGPLAN_TEST_VALKEY is not set; scripts/bench-backend.sh sets it")
	}
	rigOnce.Do(func() { theRig, rigErr = startRig(addr) })
	if rigErr != nil {
		b.Fatal(rigErr)
	}
	return theRig
}

// pprofOverlay is added to the backend's main package, through go build -overlay, only when
// CODINGPLAN_BENCH_PPROF is set to an address: the backend then serves net/http/pprof there,
// for profiling while a benchmark runs:
//
//	go tool pprof -top 'http://ADDR/debug/pprof/profile?seconds=10'
//
// Without it the measured binary is the production one.
const pprofOverlay = `package main

import (
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("BENCH_PPROF_ADDR"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			panic(err)
		}
		go http.Serve(ln, nil)
	}
}
`

func startRig(valkeyAddr string) (_ *rig, err error) {
	dir, err := os.MkdirTemp("", "codingplan-bench-")
	if err != nil {
		return nil, err
	}
	r := &rig{dir: dir}
	defer func() {
		if err != nil {
			r.stop()
		}
	}()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOMOD: %w", err)
	}
	args := []string{"build", "-o", dir + "/"}
	pprofAddr := os.Getenv("CODINGPLAN_BENCH_PPROF")
	if pprofAddr != "" {
		main := filepath.Join(filepath.Dir(strings.TrimSpace(string(root))), "backend/cmd/codingplan-backend")
		overlay := filepath.Join(dir, "overlay.json")
		src := filepath.Join(dir, "pprof.go")
		if err := os.WriteFile(src, []byte(pprofOverlay), 0o600); err != nil {
			return nil, err
		}
		j, _ := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(main, "zz_bench_pprof.go"): src}})
		if err := os.WriteFile(overlay, j, 0o600); err != nil {
			return nil, err
		}
		args = append(args, "-overlay", overlay)
	}
	build := exec.Command("go", append(args, "./backend/cmd/codingplan-backend", "./backend/cmd/codingplan-fakeprovider")...)
	build.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building: %w\n%s", err, out)
	}

	// The provider prints its URL first.
	provider := exec.Command(filepath.Join(dir, "codingplan-fakeprovider"), "--listen", "127.0.0.1:0")
	out, err := provider.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := r.start(provider, "fakeprovider"); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("the provider printed no URL: %w", err)
	}
	r.providerURL = strings.TrimSpace(line)

	state := filepath.Join(dir, "state")
	r.state = state
	cfg := fmt.Sprintf(rigConfig+`default_model = "echo"

[[models]]
name = "echo"
provider = "openai-chat"
base_url = %q
model = "echo"

[plans.bench]
concurrency = 1024
`, r.providerURL+"/v1")
	cfgPath := filepath.Join(dir, "backend.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	args = []string{"serve", "--config", cfgPath, "--listen", "127.0.0.1:0", "--state-dir", state,
		"--valkey", valkeyAddr, "--valkey-prefix", "bench-" + randHex(4), "--log-level", "info"}
	if os.Getenv("CODINGPLAN_BENCH_NO_VALKEY") == "1" {
		// Leases in the process instead of Valkey: shows what the Valkey round trips cost.
		args[8] = ""
	}
	r.backend = exec.Command(filepath.Join(dir, "codingplan-backend"), args...)
	r.backend.Env = os.Environ()
	if pprofAddr != "" {
		r.backend.Env = append(r.backend.Env, "BENCH_PPROF_ADDR="+pprofAddr)
	}
	if p := os.Getenv("CODINGPLAN_BENCH_BACKEND_GOMAXPROCS"); p != "" {
		r.backend.Env = append(r.backend.Env, "GOMAXPROCS="+p)
	}
	stderr, err := r.backend.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := r.start(r.backend, ""); err != nil {
		return nil, err
	}
	// The "listening" line gives the address; the rest of the log goes to a file.
	logFile, err := os.Create(filepath.Join(dir, "backend.log"))
	if err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	r.logDone = make(chan struct{})
	go func() { // ends with the backend's stderr; stop waits for it
		defer close(r.logDone)
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				addr <- l.Addr
			}
			logFile.Write(append(sc.Bytes(), '\n'))
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			return nil, fmt.Errorf("the backend exited; see %s", logFile.Name())
		}
		r.httpURL, r.wsURL = "http://"+a, "ws://"+a+"/v1/ws"
	case <-time.After(60 * time.Second):
		return nil, errors.New("the backend did not start listening")
	}
	tok, err := exec.Command(filepath.Join(dir, "codingplan-backend"), "token", "--config", cfgPath,
		"--sub", "bench-"+randHex(4), "--plan", "bench", "--state-dir", state).Output()
	if err != nil {
		return nil, fmt.Errorf("minting a token: %w", err)
	}
	r.token = strings.TrimSpace(string(tok))
	return r, nil
}

func (r *rig) start(cmd *exec.Cmd, logName string) error {
	if logName != "" {
		f, err := os.Create(filepath.Join(r.dir, logName+".log"))
		if err != nil {
			return err
		}
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.procs = append(r.procs, cmd)
	return nil
}

// stop ends the processes (the backend drains on SIGTERM) and removes the rig's files.
func (r *rig) stop() {
	for _, p := range r.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() {
			if p == r.backend && r.logDone != nil {
				<-r.logDone // Wait closes the pipe: read it to the end first
			}
			_ = p.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	os.RemoveAll(r.dir)
}

// cpuTime returns the CPU time, user plus system, the backend process has used so far (all
// its threads, from /proc/PID/stat, in clock ticks of 10 ms).
func (r *rig) cpuTime() (time.Duration, error) { return procCPU(r.backend.Process.Pid) }

// procCPU returns the CPU time, user plus system, process pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const tick = 10 * time.Millisecond // sysconf(_SC_CLK_TCK) is 100 on Linux
	return time.Duration(utime+stime) * tick, nil
}

var switchesRE = regexp.MustCompile(`(?m)^(?:non)?voluntary_ctxt_switches:\s+([0-9]+)$`)

// switches returns the context switches of the backend's threads so far (/proc/PID/task/*/
// status): on a machine where a switch costs tens of microseconds they are most of a relay's
// CPU, and they vary less from run to run than the CPU time does.
func (r *rig) switches() (int64, error) {
	dir := fmt.Sprintf("/proc/%d/task", r.backend.Process.Pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if err != nil {
			continue // the thread exited
		}
		for _, m := range switchesRE.FindAllSubmatch(b, -1) {
			v, _ := strconv.ParseInt(string(m[1]), 10, 64)
			n += v
		}
	}
	return n, nil
}

var mallocsRE = regexp.MustCompile(`(?m)^go_memstats_mallocs_total ([0-9.e+]+)$`)

// mallocs returns the backend's heap allocations so far, from its /metrics.
func (r *rig) mallocs(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.httpURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	m := mallocsRE.FindSubmatch(body)
	if m == nil {
		return 0, errors.New("no go_memstats_mallocs_total in /metrics")
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
