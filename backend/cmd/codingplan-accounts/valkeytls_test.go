package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/accounts"
	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/usage"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	wire "github.com/codingplan/codingplan/shared"
)

// TestValkeyTLSACL: the admin commands reach a TLS-only Valkey as the ACL user docs/accounts.md
// documents, with its password in the named variable: account suspend publishes the
// revocation (the denylist key is there), the usage import reads the counts, account delete
// deletes the account's usage counts;
// a wrong password fails clearly without printing it.
func TestValkeyTLSACL(t *testing.T) {
	const (
		password = "accounts-valkey-pw-7d1e94ab"
		env      = "CODINGPLAN_TEST_ACCOUNTS_VALKEY_PASSWORD"
		prefix   = "test-acct"
	)
	vk := valkeytest.StartWith(t, valkeytest.Options{TLS: true, ACL: valkeytest.AccountsACL(t, password, "~test-*")})
	admin := vk.AdminClient()
	dbFile := filepath.Join(t.TempDir(), "accounts.db")
	r := newRunnerOn(t, "sqlite:"+dbFile)
	r.env = append(r.env, env+"="+password)
	flags := []string{"--valkey", vk.Addr(), "--valkey-prefix", prefix, "--valkey-username", "codingplan-accounts",
		"--valkey-password-env", env, "--valkey-tls", "--valkey-tls-ca", vk.CA.File}
	id := strings.TrimSpace(r.must("", "account", "create", "--email", "ada@example.com", "--plan", "pro"))
	ctx := t.Context()

	r.must("", append([]string{"account", "suspend", id}, flags...)...)
	revoked := prefix + ":{" + id + "}:revoked"
	if ttl, err := admin.Do(ctx, admin.B().Pttl().Key(revoked).Build()).AsInt64(); err != nil || ttl <= 0 || ttl > int64(20*time.Minute/time.Millisecond) {
		t.Errorf("denylist key %s after suspend: ttl %d ms, %v", revoked, ttl, err)
	}

	for _, user := range []string{id, "someone-else"} {
		if err := usage.New(admin, prefix, nil).Record(ctx, user, wire.Usage{PromptTokens: 3}); err != nil {
			t.Fatal(err)
		}
	}
	// serve's usage import, as the same user.
	st := accounts.DefaultSettings()
	st.Valkey, st.ValkeyPrefix, st.ValkeyUsername, st.ValkeyPasswordEnv = vk.Addr(), prefix, "codingplan-accounts", env
	st.ValkeyTLS, st.ValkeyTLSCA = true, vk.CA.File
	client, err := dialValkey(st, func(k string) string {
		if k == env {
			return password
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := store.OpenSQLite(ctx, dbFile)
	if err != nil {
		t.Fatal(err)
	}
	err = accounts.ImportUsage(ctx, d, client, prefix, 2)
	client.Close()
	if err != nil {
		t.Errorf("usage import: %v", err)
	}
	if days, err := d.Usage(ctx, id); err != nil || len(days) != 1 || days[0].Requests != 1 || days[0].Tokens != 3 {
		t.Errorf("imported usage: %+v, %v; want 1 request and 3 tokens", days, err)
	}
	d.Close()

	r.must("", append([]string{"account", "delete", id}, flags...)...)
	keys, err := admin.Do(ctx, admin.B().Keys().Pattern(prefix+":*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if len(keys) != 2 || keys[0] != revoked || !strings.HasPrefix(keys[1], prefix+":{someone-else}:usage:") {
		t.Errorf("keys after delete: %q, want %s and the other account's usage", keys, revoked)
	}

	id2 := strings.TrimSpace(r.must("", "account", "create", "--email", "bob@example.com", "--plan", "pro"))
	wrong := "wrong-" + password
	r.env = append(r.env, env+"="+wrong)
	out, errOut, code := r.run("", append([]string{"account", "suspend", id2}, flags...)...)
	if code == 0 {
		t.Fatalf("suspend with a wrong password: exit 0\n%s", out)
	}
	if !strings.Contains(errOut, "auth") {
		t.Errorf("wrong password: the message does not say so:\n%s", errOut)
	}
	if strings.Contains(out+errOut, password) {
		t.Errorf("the password is in the output:\n%s%s", out, errOut)
	}
	t.Logf("wrong password: exit %d: %s", code, strings.TrimSpace(errOut))
}
