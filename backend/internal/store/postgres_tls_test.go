package store

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store/pgtest"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
)

// TestPostgresTLS runs a private cluster that accepts TLS connections only (ssl = on, and
// pg_hba.conf rejects the others), with a certificate from a throwaway CA: the store connects
// with sslmode=verify-full and that CA, migrates and works; with another CA, or without TLS,
// it fails with an error that says why, and not as a passing outage.
func TestPostgresTLS(t *testing.T) {
	pgtest.Admin(t) // PostgreSQL is installed
	ca := valkeytest.NewCA(t)
	certFile, keyFile := ca.Issue("postgres")
	port := startTLSCluster(t, certFile, keyFile)

	ctx := t.Context()
	dsn := func(query string) string {
		return "postgres://postgres@localhost:" + port + "/postgres?" + query
	}
	s := openPostgresDSN(t, dsn("sslmode=verify-full&sslrootcert="+ca.File))
	ok(t, "Migrate over TLS", s.Migrate(ctx))
	a := mustAccount(t, s, "tls@example.com")
	ok(t, "SetUsage", s.SetUsage(ctx, a.ID, "2026-12-07", 2, 30))
	got, err := s.AccountByEmail(ctx, "TLS@example.com")
	ok(t, "AccountByEmail", err)
	eq(t, "account over TLS", got, a)
	u, err := s.Usage(ctx, a.ID)
	ok(t, "Usage", err)
	eq(t, "usage over TLS", u, []UsageDay{{AccountID: a.ID, Day: "2026-12-07", Requests: 2, Tokens: 30}})

	other := valkeytest.NewCA(t)
	for _, tc := range []struct {
		name, query string
		says        []string
	}{
		{"wrong CA", "sslmode=verify-full&sslrootcert=" + other.File, []string{"certificate", "unknown authority"}},
		{"no TLS", "sslmode=disable", []string{"no encryption"}},
		{"missing CA file", "sslmode=verify-full&sslrootcert=" + filepath.Join(t.TempDir(), "none.pem"), []string{"none.pem"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			s, err := OpenPostgres(ctx, dsn(tc.query))
			if err == nil {
				defer s.Close()
				_, err = s.Version(ctx)
			}
			t.Logf("%s: %v", tc.name, err)
			if err == nil {
				t.Fatal("connected")
			}
			for _, want := range tc.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if tc.name == "wrong CA" && errors.Is(err, ErrUnavailable) {
				t.Errorf("a certificate that does not verify is a configuration error, not ErrUnavailable: %v", err)
			}
		})
	}
}

// startTLSCluster starts a cluster of the test's own with scripts/postgres.sh, turns on TLS with
// the given certificate and key, refuses connections without TLS, and returns its port.
func startTLSCluster(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	port := freePort(t)
	// The server runs as the postgres user (when we are root): its state dir must be reachable.
	state, err := os.MkdirTemp("", "codingplan-pgtls-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	script := func(args ...string) {
		t.Helper()
		cmd := exec.Command("../../../scripts/postgres.sh", args...)
		cmd.Env = append(os.Environ(), "CODINGPLAN_POSTGRES_DIR="+state)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("postgres.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() { script("stop", port); os.RemoveAll(state) })
	script("start", port)
	script("halt", port)

	data := filepath.Join(state, port, "data")
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	install := func(src, name string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(data, name)
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := os.Chown(dst, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(certFile, "server.crt")
	install(keyFile, "server.key")
	appendTo := func(name, text string) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(data, name), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
	}
	appendTo("postgresql.conf", "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
	// pg_hba.conf is read top down: put the rejection of plain connections first.
	hba := filepath.Join(data, "pg_hba.conf")
	b, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hba, append([]byte("hostnossl all all all reject\n"), b...), 0o600); err != nil {
		t.Fatal(err)
	}
	script("start", port)
	return port
}
