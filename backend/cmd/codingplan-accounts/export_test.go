package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// TestAccountExport: `account export` prints every row about the account as JSON, with key
// prefixes and dates but no key, no hash and no password hash, and nothing of other accounts.
func TestAccountExport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.db")
	r := newRunnerOn(t, "sqlite:"+path)
	id := strings.TrimSpace(r.must("correct horse battery\n", "account", "create", "--email", "ada@example.com", "--name", "Ada Lovelace", "--plan", "pro", "--password-stdin"))
	other := strings.TrimSpace(r.must("", "account", "create", "--email", "bob@example.com", "--name", "Bob"))
	key := strings.TrimSpace(r.must("", "key", "create", id, "--name", "laptop"))
	r.must("", "key", "create", other, "--name", "bob's")

	st, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	if err := st.CreateFamily(t.Context(), store.Family{ID: "fam1", AccountID: id, Client: "vscode", Created: at}, []byte("refresh-hash-0123456789abcdef012")); err != nil {
		t.Fatal(err)
	}
	if err := st.SetUsage(t.Context(), id, "2026-12-06", 12, 3400); err != nil {
		t.Fatal(err)
	}
	if err := st.SetUsage(t.Context(), other, "2026-12-06", 99, 99); err != nil {
		t.Fatal(err)
	}
	pw, err := st.PasswordHash(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	for _, ref := range []string{id, "ADA@example.com"} {
		out := r.must("", "account", "export", ref)
		var x struct {
			Account  struct{ ID, Email, Name, Plan, Status string }
			Password bool                                `json:"password_set"`
			Keys     []struct{ ID, Name, Prefix string } `json:"api_keys"`
			Signins  []struct{ ID, Client string }
			Usage    []struct {
				Day      string
				Requests int64
				Tokens   int64
			}
		}
		if err := json.Unmarshal([]byte(out), &x); err != nil {
			t.Fatalf("export %s: %v\n%s", ref, err, out)
		}
		if x.Account.ID != id || x.Account.Email != "ada@example.com" || x.Account.Name != "Ada Lovelace" || x.Account.Plan != "pro" || x.Account.Status != "active" || !x.Password {
			t.Errorf("export %s: account %+v password %v", ref, x.Account, x.Password)
		}
		if len(x.Keys) != 1 || x.Keys[0].Name != "laptop" || x.Keys[0].Prefix != key[:12] {
			t.Errorf("export %s: keys %+v", ref, x.Keys)
		}
		if len(x.Signins) != 1 || x.Signins[0].ID != "fam1" || x.Signins[0].Client != "vscode" {
			t.Errorf("export %s: sign-ins %+v", ref, x.Signins)
		}
		if len(x.Usage) != 1 || x.Usage[0].Day != "2026-12-06" || x.Usage[0].Requests != 12 || x.Usage[0].Tokens != 3400 {
			t.Errorf("export %s: usage %+v", ref, x.Usage)
		}
		for _, secret := range []string{key, pw, "$argon2", "hash", other, "bob"} {
			if strings.Contains(out, secret) {
				t.Errorf("export %s holds %q:\n%s", ref, secret, out)
			}
		}
	}

	for _, tt := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"account", "export", "nobody@example.com"}, 1, "no such account"},
		{[]string{"account", "export"}, 2, "takes 1 argument"},
		{[]string{"account", "export", "'; DROP TABLE accounts; --"}, 1, "no such account"},
	} {
		_, errOut, code := r.run("", tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.err) {
			t.Errorf("%v: exit %d %q, want %d and %q", tt.args, code, errOut, tt.code, tt.err)
		}
	}
}
