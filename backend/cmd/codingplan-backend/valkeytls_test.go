package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/usage"
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

// TestServeValkeyTLS: serve with an ACL user, a password from the environment and TLS to a
// private CA runs a stream with its lease and usage in Valkey, and its password is in none of
// its log, /readyz and /metrics.
func TestServeValkeyTLS(t *testing.T) {
	srv := tlsValkey(t)
	prefix := fmt.Sprintf("test-tls-%d", time.Now().UnixNano())
	gate := make(chan struct{}, 1)
	s := startServeEnv(t, tlsConfigText(srv, srv.CA.File, prefix, gatedOpenAI(t, gate)), map[string]string{passwordEnv: canaryPassword})
	s.awaitReadyz("status", "ready")

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

	st := s.request("c1")
	st.expect(wire.TypeDelta, "hello ")
	if n, err := client.Do(context.Background(), client.B().Zcard().Key(prefix+":{dev}:leases").Build()).AsInt64(); err != nil || n != 1 {
		t.Errorf("leases in Valkey during the stream: %d, %v; want 1", n, err)
	}
	gate <- struct{}{}
	st.expect(wire.TypeDelta, "world")
	st.expect(wire.TypeDone, "")

	_, readyz := s.get("/readyz")
	_, metrics := s.get("/metrics")
	s.stop() // waits for the stream, which records its usage just after done
	got, err := usage.New(client, prefix, nil).Day(context.Background(), "dev", time.Now())
	if want := (usage.Counts{Requests: 1, PromptTokens: 5, CompletionTokens: 2}); err != nil || got != want {
		t.Errorf("usage in Valkey: %+v, %v; want %+v", got, err, want)
	}
	logs := s.stderr.String()
	if !strings.Contains(logs, `"valkey":true`) {
		t.Errorf("the log does not say Valkey is used:\n%s", logs)
	}
	for _, bad := range []string{"valkey unreachable", "NOPERM", "degraded", "usage not recorded"} {
		if strings.Contains(logs, bad) {
			t.Errorf("the log has %q:\n%s", bad, logs)
		}
	}
	noCanary(t, map[string]string{"the log": logs, "/readyz": readyz, "/metrics": metrics})
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
