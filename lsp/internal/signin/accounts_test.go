package signin

// The tests here run against a real codingplan-accounts process on SQLite, built from this
// repository (the language server never imports the account plane: it talks HTTP to it).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wire "github.com/codingplan/codingplan/shared"
)

// accountsBin is the codingplan-accounts binary TestMain builds.
var accountsBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "codingplan-signin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOMOD:", err)
		return 1
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./backend/cmd/codingplan-accounts")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building codingplan-accounts: %v\n%s", err, out)
		return 1
	}
	accountsBin = filepath.Join(dir, "codingplan-accounts")
	return m.Run()
}

// accountsSvc is a running codingplan-accounts with one account, dev@localhost on plan pro.
type accountsSvc struct {
	url      string
	env      []string
	email    string
	password string
}

const testPassword = "correct horse battery staple"

// startAccounts starts codingplan-accounts with its own SQLite database; settings are extra
// CODINGPLAN_ACCOUNTS_* variables (e.g. ACCESS_TTL=1m). It stops when the test ends.
func startAccounts(t *testing.T, settings ...string) *accountsSvc {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := &accountsSvc{url: "http://" + addr, email: "dev@localhost", password: testPassword}
	a.env = append(os.Environ(),
		"CODINGPLAN_ACCOUNTS_LISTEN="+addr,
		"CODINGPLAN_ACCOUNTS_STATE_DIR="+dir,
		"CODINGPLAN_ACCOUNTS_DATABASE=sqlite:"+filepath.Join(dir, "accounts.db"),
		"CODINGPLAN_ACCOUNTS_RATE_DEVICE_PER_MINUTE=0",
		"CODINGPLAN_ACCOUNTS_RATE_TOKEN_PER_MINUTE=0",
		"CODINGPLAN_ACCOUNTS_RATE_SESSION_PER_MINUTE=0",
		"CODINGPLAN_ACCOUNTS_RATE_ACCOUNT_PER_MINUTE=0",
	)
	for _, s := range settings {
		a.env = append(a.env, "CODINGPLAN_ACCOUNTS_"+s)
	}
	a.admin(t, testPassword+"\n", "account", "create", "--email", a.email, "--name", "Dev", "--plan", "pro", "--password-stdin")

	log, err := os.Create(filepath.Join(dir, "accounts.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(accountsBin, "serve")
	cmd.Env, cmd.Stdout, cmd.Stderr = a.env, log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		log.Close()
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("codingplan-accounts log:\n%s", out)
		}
	})
	// Ready when /readyz answers 200: poll the process, which has no way to tell us.
	ready := time.NewTimer(20 * time.Second)
	defer ready.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := http.Get(a.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a
			}
		}
		select {
		case <-exited:
			t.Fatal("codingplan-accounts exited at start")
		case <-ready.C:
			t.Fatal("codingplan-accounts did not become ready")
		case <-tick.C:
		}
	}
}

// admin runs an administration command on the service's database and returns its stdout.
func (a *accountsSvc) admin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(accountsBin, args...)
	cmd.Env = a.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("codingplan-accounts %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// decide approves (or denies) a device sign-in as the signed-in user would on the device page,
// through the service's API: POST /v1/session, then POST /v1/device/approve.
func (a *accountsSvc) decide(t *testing.T, userCode, action string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	post := func(path string, body any) {
		data, _ := json.Marshal(body)
		resp, err := hc.Post(a.url+path, "application/json", bytes.NewReader(data))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			var e map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&e)
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, e)
		}
	}
	post("/v1/session", map[string]string{"email": a.email, "password": a.password})
	post("/v1/device/approve", map[string]string{"user_code": userCode, "action": action})
}

// signIn runs a device sign-in against the service and approves it: the tokens it gives.
func (a *accountsSvc) signIn(t *testing.T, svc *Service) Tokens {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	d, err := svc.StartDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.decide(t, d.UserCode, "approve")
	tok, err := svc.Await(ctx, nil, d)
	if err != nil {
		t.Fatalf("Await: %v", err)
	}
	return tok
}

// recv waits for a value from ch, at most 30 s.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// tokenSink collects what a Keeper hands on and tells.
type tokenSink struct {
	set  chan wire.Secret
	lost chan string
}

func newSink() *tokenSink {
	return &tokenSink{set: make(chan wire.Secret, 16), lost: make(chan string, 16)}
}

func (s *tokenSink) config(file File, early time.Duration) KeeperConfig {
	return KeeperConfig{File: file, Early: early,
		Set:  func(t wire.Secret) { s.set <- t },
		Lost: func(m string) { s.lost <- m }}
}
