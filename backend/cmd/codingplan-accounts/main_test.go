package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/codingplan/codingplan/backend/internal/store/pgtest"
)

// binary is codingplan-accounts, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "codingplan-accounts-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "codingplan-accounts")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cmd runs the binary with a database of the test's own and returns stdout, stderr and the
// exit status.
type runner struct {
	t   *testing.T
	env []string
}

func newRunner(t *testing.T) *runner {
	return newRunnerOn(t, "sqlite:"+filepath.Join(t.TempDir(), "accounts.db"))
}

func newRunnerOn(t *testing.T, db string) *runner {
	return &runner{t: t, env: append(os.Environ(), "CODINGPLAN_ACCOUNTS_DATABASE="+db, "CODINGPLAN_ACCOUNTS_CONFIG=")}
}

func (r *runner) run(stdin string, args ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	c := exec.CommandContext(r.t.Context(), binary, args...)
	c.Env = r.env
	c.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		r.t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// must runs a command that must succeed and returns its stdout.
func (r *runner) must(stdin string, args ...string) string {
	r.t.Helper()
	out, errOut, code := r.run(stdin, args...)
	if code != 0 {
		r.t.Fatalf("%v: exit %d\n%s", args, code, errOut)
	}
	return out
}

func TestCLI(t *testing.T) {
	r := newRunner(t)
	if out := r.must("", "migrate"); !strings.Contains(out, "schema at version") {
		t.Errorf("migrate: %q", out)
	}
	id := strings.TrimSpace(r.must("correct horse battery\n", "account", "create", "--email", "ada@example.com", "--name", "Ada", "--plan", "pro", "--password-stdin"))
	if len(id) != 32 {
		t.Fatalf("account create printed %q, want the id", id)
	}
	for _, tt := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"account", "create", "--email", "ADA@example.com"}, 1, "exists already"},
		{[]string{"account", "create"}, 2, "--email is required"},
		{[]string{"account", "create", "--email", "b@example.com", "--plan", "gold"}, 2, `plan "gold" is not configured`},
		{[]string{"account", "show", "nobody"}, 1, "no such account"},
		{[]string{"account", "show"}, 2, "takes 1 argument"},
		{[]string{"account", "set-plan", id, "gold"}, 2, "not configured"},
		{[]string{"account", "resume", id}, 1, "not suspended"},
		{[]string{"account", "frobnicate"}, 2, "unknown subcommand"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{}, 2, "no command"},
		{[]string{"key", "create", id}, 2, "--name is required"},
		{[]string{"key", "revoke", id, "nokey"}, 1, "no such key"},
		{[]string{"signin", "revoke", id, "nosignin"}, 1, "no such sign-in"},
		{[]string{"keys", "frob"}, 2, "unknown subcommand"},
		{[]string{"account", "list", "--database", "mysql://x"}, 2, "database"},
	} {
		_, errOut, code := r.run("", tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.err) {
			t.Errorf("%v: exit %d %q, want %d and %q", tt.args, code, errOut, tt.code, tt.err)
		}
	}

	var list []map[string]any
	if err := json.Unmarshal([]byte(r.must("", "account", "list", "--json")), &list); err != nil || len(list) != 1 || list[0]["id"] != id {
		t.Errorf("account list --json: %v %v", list, err)
	}
	if out := r.must("", "account", "list"); !strings.Contains(out, id) || !strings.Contains(out, "ada@example.com") {
		t.Errorf("account list: %q", out)
	}
	r.must("", "account", "set-plan", id, "max")
	r.must("", "account", "suspend", "ada@example.com")
	var show map[string]any
	if err := json.Unmarshal([]byte(r.must("", "account", "show", id, "--json")), &show); err != nil || show["plan"] != "max" || show["status"] != "suspended" {
		t.Errorf("account show --json after set-plan and suspend: %v %v", show, err)
	}
	r.must("", "account", "resume", id)
	r.must("", "account", "set-plan", id, "none")

	// Keys: printed once, listed by prefix, revoked.
	key := strings.TrimSpace(r.must("", "key", "create", "ada@example.com", "--name", "ci"))
	if !strings.HasPrefix(key, "cpk_") {
		t.Fatalf("key create printed %q", key)
	}
	var keys []map[string]any
	if err := json.Unmarshal([]byte(r.must("", "key", "list", id, "--json")), &keys); err != nil || len(keys) != 1 {
		t.Fatalf("key list: %v %v", keys, err)
	}
	if strings.Contains(r.must("", "key", "list", id), key) || keys[0]["prefix"] != key[:12] {
		t.Errorf("key list shows the key or the wrong prefix: %v", keys)
	}
	r.must("", "key", "revoke", id, keys[0]["id"].(string))
	if out := r.must("", "key", "list", id, "--json"); !strings.Contains(out, `"revoked"`) {
		t.Errorf("after revoke: %s", out)
	}
	if out := r.must("", "signin", "list", id, "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("signin list: %q", out)
	}

	// Injection strings are data.
	for _, in := range []string{`'; DROP TABLE accounts; --`, `" OR 1=1 --`} {
		if _, _, code := r.run("", "account", "show", in); code != 1 {
			t.Errorf("account show %q: exit %d", in, code)
		}
		if _, _, code := r.run("", "account", "create", "--email", in+"@example.com", "--name", in); code != 0 {
			t.Errorf("account create with %q: exit %d", in, code)
		}
	}

	_, errOut, code := r.run("", "account", "delete", id)
	if code != 0 || !strings.Contains(errOut, "deleted") {
		t.Errorf("account delete: exit %d %q", code, errOut)
	}
	if _, _, code := r.run("", "account", "show", id); code != 1 {
		t.Errorf("show after delete: exit %d", code)
	}
}

// TestRoutingPlaneDeps: codingplan-backend never links the account plane or its drivers.
func TestRoutingPlaneDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../codingplan-backend").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/jackc/pgx", "modernc.org/sqlite", "github.com/pressly/goose", "github.com/stripe/stripe-go",
			"/backend/internal/store", "/backend/internal/billing", "/backend/internal/accounts",
		} {
			if strings.Contains(dep, banned) {
				t.Errorf("codingplan-backend depends on %s", dep)
			}
		}
	}
}

// TestCLIPostgres: on PostgreSQL, admin commands ask for `migrate` first, then work.
func TestCLIPostgres(t *testing.T) {
	r := newRunnerOn(t, pgtest.NewDB(t, "accounts_cli"))
	if _, errOut, code := r.run("", "account", "list"); code != 1 || !strings.Contains(errOut, "run codingplan-accounts migrate") {
		t.Errorf("account list before migrate: exit %d %q", code, errOut)
	}
	r.must("", "migrate")
	id := strings.TrimSpace(r.must("", "account", "create", "--email", "ada@example.com", "--plan", "pro"))
	if out := r.must("", "account", "show", "ADA@example.com", "--json"); !strings.Contains(out, id) {
		t.Errorf("account show: %s", out)
	}
}
