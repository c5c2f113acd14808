package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/config"
	"github.com/codingplan/codingplan/backend/internal/valkeyconn"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	wire "github.com/codingplan/codingplan/shared"
)

// canaryPassword is the Valkey ACL user's password in these tests: it must never show up in
// the log, /readyz or /metrics.
const canaryPassword = "canary-valkey-pw-5be1d0c9"

const passwordEnv = "CODINGPLAN_TEST_VALKEY_PASSWORD"

// tlsValkey starts a TLS-only Valkey whose only user is codingplan, with canaryPassword and
// the rights docs/operations.md gives it, on keys that start with "test-".
func tlsValkey(t *testing.T) *valkeytest.Server {
	t.Helper()
	return valkeytest.StartWith(t, valkeytest.Options{TLS: true, ACL: valkeytest.BackendACL(t, canaryPassword, "~test-*")})
}

// tlsConfigText is a serve configuration for srv, with its CA file ca, and a model at provider.
func tlsConfigText(srv *valkeytest.Server, ca, prefix, provider string) string {
	return fmt.Sprintf(`listen = "127.0.0.1:0"
log_level = "debug"
valkey = %q
valkey_prefix = %q
valkey_username = "codingplan"
valkey_password_env = %q
valkey_tls = true
valkey_tls_ca = %q
drain_timeout = "5s"
lease_recovery_window = "-1s"

[[models]]
name = "fake"
aliases = ["default"]
provider = "openai-chat"
base_url = %q
model = "fake-1"
`, srv.Addr(), prefix, passwordEnv, ca, provider)
}

// noCanary fails the test if any of the texts holds the password.
func noCanary(t *testing.T, texts map[string]string) {
	t.Helper()
	for name, text := range texts {
		if strings.Contains(text, canaryPassword) {
			t.Errorf("%s holds the Valkey password", name)
		}
	}
}

// TestServeValkeyTLS: codingplan-backend serve, as a process of its own, with an ACL user, the
// password in its environment and TLS to a private CA, runs a stream with its lease in Valkey
// and records its usage there (read back by the usage subcommand through the same settings);
// the password is in none of its log, stdout, /readyz and /metrics.
func TestServeValkeyTLS(t *testing.T) {
	srv := tlsValkey(t)
	prefix := fmt.Sprintf("test-tls-%d", time.Now().UnixNano())
	gate := make(chan struct{}, 1)
	dir := t.TempDir()
	cfgPath, state := filepath.Join(dir, "backend.toml"), filepath.Join(dir, "state")
	if err := os.WriteFile(cfgPath, []byte(tlsConfigText(srv, srv.CA.File, prefix, gatedOpenAI(t, gate))), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "serve", "--config", cfgPath, "--state-dir", state)
	for _, kv := range os.Environ() { // none of the caller's settings: only the file's
		if !strings.HasPrefix(kv, config.EnvPrefix) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, envRunMain+"=1", passwordEnv+"="+canaryPassword)
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // owned by stop and the cleanup, which receive from exited
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(wait):
			_ = cmd.Process.Kill()
			return fmt.Errorf("serve did not exit after SIGTERM: %w", <-exited)
		}
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = stop()
		}
	})
	m := stdout.await(t, regexp.MustCompile(`export CODINGPLAN_BACKEND_URL=(ws://([^/\s]+)/v1/ws)\n`))
	var tok strings.Builder
	if err := run(context.Background(), []string{"token", "--sub", "dev", "--plan", "pro", "--state-dir", state}, &tok, io.Discard, env(nil)); err != nil {
		t.Fatal(err)
	}
	s := &served{t: t, base: "http://" + m[2], ws: m[1], token: strings.TrimSpace(tok.String()), state: state, stderr: stderr}
	s.awaitReadyz("status", "ready")

	st := s.request("c1")
	st.expect(wire.TypeDelta, "hello ")
	if n := tlsZcard(t, srv, prefix+":{dev}:leases"); n != 1 {
		t.Errorf("leases in Valkey during the stream: %d, want 1", n)
	}
	gate <- struct{}{}
	st.expect(wire.TypeDelta, "world")
	st.expect(wire.TypeDone, "")

	_, readyz := s.get("/readyz")
	_, metrics := s.get("/metrics")
	stopped = true
	if err := stop(); err != nil { // waits for the stream, which records its usage just after done
		t.Errorf("serve: %v\n%s", err, stderr.String())
	}
	var out strings.Builder
	if err := run(context.Background(), []string{"usage", "--user", "dev", "--config", cfgPath}, &out, io.Discard,
		env(map[string]string{passwordEnv: canaryPassword})); err != nil {
		t.Fatal(err)
	}
	if want := `"requests":1,"prompt_tokens":5,"completion_tokens":2`; !strings.Contains(out.String(), want) {
		t.Errorf("usage: %s, want %s", out.String(), want)
	}
	logs := stderr.String()
	if !strings.Contains(logs, `"valkey":true`) || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("the log does not say Valkey is used, or serve did not stop cleanly:\n%s", logs)
	}
	for _, bad := range []string{"valkey unreachable", "NOPERM", "degraded", "usage not recorded"} {
		if strings.Contains(logs, bad) {
			t.Errorf("the log has %q:\n%s", bad, logs)
		}
	}
	noCanary(t, map[string]string{"the log": logs, "stdout": stdout.String(), "/readyz": readyz, "/metrics": metrics})
}

// tlsZcard is ZCARD key on srv, as the backend's user.
func tlsZcard(t *testing.T, srv *valkeytest.Server, key string) int64 {
	t.Helper()
	opt, err := valkeyconn.Options(valkeyconn.Config{Addrs: []string{srv.Addr()}, Username: "codingplan", PasswordEnv: passwordEnv, TLS: true, TLSCA: srv.CA.File},
		env(map[string]string{passwordEnv: canaryPassword}))
	if err != nil {
		t.Fatal(err)
	}
	client, err := valkey.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	n, err := client.Do(context.Background(), client.B().Zcard().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestServeValkeyRefused: a wrong password or CA, or plain TCP to Valkey's TLS port, starts
// serve degraded with a log line that says why; a missing password variable or a bad CA file
// stops serve at start with a message naming the setting. No message holds the password.
func TestServeValkeyRefused(t *testing.T) {
	srv := tlsValkey(t)
	provider := gatedOpenAI(t, make(chan struct{}))
	garbage := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := tlsConfigText(srv, srv.CA.File, "test-refused", provider)
	goodEnv := map[string]string{passwordEnv: canaryPassword}

	for _, tt := range []struct {
		name   string
		config string
		vars   map[string]string
		want   []string // in the log
	}{
		{"wrong password", good, map[string]string{passwordEnv: canaryPassword + "-old"}, // sent, so it must not come back either
			[]string{`"cause":"auth"`, "WRONGPASS"}},
		{"wrong ca", tlsConfigText(srv, valkeytest.NewCA(t).File, "test-refused", provider), goodEnv,
			[]string{`"cause":"tls"`, "certificate signed by unknown authority"}},
		{"plain tcp to the tls port", strings.Replace(strings.Replace(good, "valkey_tls = true\n", "", 1), "valkey_tls_ca = ", "# ", 1), goodEnv,
			[]string{`"cause":"network: the server closed the connection; if it wants TLS, set valkey_tls"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServeEnv(t, tt.config, tt.vars)
			_, readyz := s.get("/readyz")
			_, metrics := s.get("/metrics")
			if !strings.Contains(readyz, `"degraded"`) {
				t.Errorf("/readyz: %s, want degraded", readyz)
			}
			s.stop()
			logs := s.stderr.String()
			for _, w := range append(tt.want, "valkey unreachable at start") {
				if !strings.Contains(logs, w) {
					t.Errorf("the log has no %q:\n%s", w, logs)
				}
			}
			noCanary(t, map[string]string{"the log": logs, "/readyz": readyz, "/metrics": metrics})
		})
	}

	for _, tt := range []struct {
		name   string
		config string
		vars   map[string]string
		want   string
	}{
		{"password variable unset", good, nil, "valkey_password_env: the variable " + passwordEnv + " is unset or empty"},
		{"ca file missing", tlsConfigText(srv, "/nonexistent/ca.pem", "test-refused", provider), goodEnv, "valkey_tls_ca: open /nonexistent/ca.pem"},
		{"ca file without a certificate", tlsConfigText(srv, garbage, "test-refused", provider), goodEnv, "valkey_tls_ca: " + garbage + " holds no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfgPath := filepath.Join(t.TempDir(), "backend.toml")
			if err := os.WriteFile(cfgPath, []byte(tt.config), 0o644); err != nil {
				t.Fatal(err)
			}
			stderr := newSyncBuffer()
			err := run(context.Background(), []string{"serve", "--config", cfgPath, "--state-dir", t.TempDir()}, newSyncBuffer(), stderr, env(tt.vars))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("serve: %v, want an error with %q", err, tt.want)
			}
			noCanary(t, map[string]string{"the error": err.Error(), "the log": stderr.String()})
		})
	}
}
