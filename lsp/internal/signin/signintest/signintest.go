// Package signintest runs a real codingplan-accounts process for tests of the language server's
// sign-in: built from this repository, on its own SQLite database, with one account that has a
// password, so that a test can approve a device sign-in through the service's API as the user
// would on the device page. The language server never imports the account plane; it talks HTTP
// to this process.
package signintest

import (
	"bytes"
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
)

// Build builds codingplan-accounts into dir and returns its path; for TestMain.
func Build(dir string) (string, error) {
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./backend/cmd/codingplan-accounts")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building codingplan-accounts: %v\n%s", err, out)
	}
	return filepath.Join(dir, "codingplan-accounts"), nil
}

// Accounts is a running codingplan-accounts with one account, Email on plan pro.
type Accounts struct {
	URL      string
	Email    string
	Password string
	bin      string
	env      []string
}

// Password is the account's password.
const Password = "correct horse battery staple"

// Start starts bin (see Build) with its own SQLite database; settings are extra
// CODINGPLAN_ACCOUNTS_* variables without the prefix (e.g. "ACCESS_TTL=1m"). It stops when the
// test ends; on a failure its log goes to the test's.
func Start(t *testing.T, bin string, settings ...string) *Accounts {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := &Accounts{URL: "http://" + addr, Email: "dev@localhost", Password: Password, bin: bin}
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
	a.Admin(t, Password+"\n", "account", "create", "--email", a.Email, "--name", "Dev", "--plan", "pro", "--password-stdin")
	log, err := os.Create(filepath.Join(dir, "accounts.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(a.bin, "serve")
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
		if resp, err := http.Get(a.URL + "/readyz"); err == nil {
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

// Admin runs an administration command on the service's database and returns its stdout.
func (a *Accounts) Admin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(a.bin, args...)
	cmd.Env = a.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("codingplan-accounts %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// Decide approves ("approve") or denies ("deny") a device sign-in as the signed-in user would on
// the device page, through the service's API: POST /v1/session, then POST /v1/device/approve.
func (a *Accounts) Decide(t *testing.T, userCode, action string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	post := func(path string, body any) {
		data, _ := json.Marshal(body)
		resp, err := hc.Post(a.URL+path, "application/json", bytes.NewReader(data))
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
	post("/v1/session", map[string]string{"email": a.Email, "password": a.Password})
	post("/v1/device/approve", map[string]string{"user_code": userCode, "action": action})
}
