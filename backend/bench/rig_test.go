package bench

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/auth"
)

// rig is the system under measurement: the test provider and the backends in front of it, all
// real processes built without the race detector, on the Valkey in CODINGPLAN_TEST_VALKEY.
type rig struct {
	dir         string
	state       string       // the backends' state directory (the development signing key)
	key         *auth.DevKey // that key, for tokens of users of its own
	users       string       // a prefix for those users' names
	providerURL string       // the provider's root
	token       string       // for a user on plan "bench", which allows 1024 streams at once
	backends    []*backend   // the tree's build, then the baseline binary when one is given
	procs       []*exec.Cmd
	rounds      int // calls of round
}

// backend is one codingplan-backend process of the rig.
type backend struct {
	name    string // "new" for the tree's build, "base" for CODINGPLAN_BENCH_BACKEND_BASE
	httpURL string
	wsURL   string
	cmd     *exec.Cmd
	logDone chan struct{} // closed when the backend's log is copied to the end
}

var (
	// rigConfig is added to the backends' configuration; a test sets it before getRig.
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
		"--valkey", valkeyAddr, "--log-level", "info"}
	if os.Getenv("CODINGPLAN_BENCH_NO_VALKEY") == "1" {
		// Leases in the process instead of Valkey: shows what the Valkey round trips cost.
		args[8] = ""
	}
	// The tree's build first: it creates the signing key in the state dir, which a baseline
	// started after it shares. pprof is for the tree's build only.
	env := func(pprof bool) []string {
		// Every client of the benchmarks dials from 127.0.0.1: no per-address limit (by the
		// environment, which a baseline binary from before the setting ignores). The per-user
		// limits stay on (each idle connection is a user of its own).
		env := []string{"CODINGPLAN_UPGRADES_PER_MINUTE=0"}
		if pprof && pprofAddr != "" {
			env = append(env, "BENCH_PPROF_ADDR="+pprofAddr)
		}
		if p := os.Getenv("CODINGPLAN_BENCH_BACKEND_GOMAXPROCS"); p != "" {
			env = append(env, "GOMAXPROCS="+p)
		}
		return env
	}
	// Each backend has its own key prefix: their leases never meet.
	prefixed := func() []string { return append(args[:len(args):len(args)], "--valkey-prefix", "bench-"+randHex(4)) }
	if _, err := r.startBackend("new", filepath.Join(dir, "codingplan-backend"), prefixed(), env(true)); err != nil {
		return nil, err
	}
	if base := os.Getenv("CODINGPLAN_BENCH_BACKEND_BASE"); base != "" {
		if _, err := r.startBackend("base", base, prefixed(), env(false)); err != nil {
			return nil, err
		}
	}
	tok, err := exec.Command(filepath.Join(dir, "codingplan-backend"), "token", "--config", cfgPath,
		"--sub", "bench-"+randHex(4), "--plan", "bench", "--state-dir", state).Output()
	if err != nil {
		return nil, fmt.Errorf("minting a token: %w", err)
	}
	r.token = strings.TrimSpace(string(tok))
	if r.key, err = auth.LoadDevKey(state); err != nil {
		return nil, err
	}
	r.users = randHex(4)
	return r, nil
}

// round returns the backends in the order one case measures them: the order flips from case
// to case and from round to round (CODINGPLAN_BENCH_ROUND, which scripts/bench-backend.sh
// counts up), so that neither the baseline nor the tree's build always runs first, on a warmer
// or a quieter machine. Sub-benchmarks run one at a time, so no lock is needed.
func (r *rig) round() []*backend {
	r.rounds++
	n, _ := strconv.Atoi(os.Getenv("CODINGPLAN_BENCH_ROUND"))
	if (r.rounds+n)%2 == 1 {
		return r.backends
	}
	bs := slices.Clone(r.backends)
	slices.Reverse(bs)
	return bs
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
			for _, be := range r.backends {
				if p == be.cmd {
					<-be.logDone // Wait closes the pipe: read it to the end first
				}
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

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
