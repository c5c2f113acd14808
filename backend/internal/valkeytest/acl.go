package valkeytest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// BackendACL returns ACL lines for a server: the user codingplan exactly as
// docs/operations.md tells operators to create it, with password and the key pattern keys
// (e.g. "~test-*") instead of the documented ones; and the default user off.
func BackendACL(t testing.TB, password, keys string) []string {
	t.Helper()
	return documentedACL(t, "docs/operations.md", "codingplan", password, keys)
}

// AccountsACL returns ACL lines for a server: the user codingplan-accounts exactly as
// docs/accounts.md tells operators to create it for the account service, with password and
// the key pattern keys instead of the documented ones; and the default user off.
func AccountsACL(t testing.TB, password, keys string) []string {
	t.Helper()
	return documentedACL(t, "docs/accounts.md", "codingplan-accounts", password, keys)
}

// documentedACL reads the line "ACL SETUSER user ..." of the document doc (indented or not).
func documentedACL(t testing.TB, doc, user, password, keys string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^[ \t]*ACL SETUSER ` + regexp.QuoteMeta(user) + ` (.*)$`).FindStringSubmatch(readRepoFile(t, doc))
	if m == nil {
		t.Fatalf("%s has no line ACL SETUSER %s ...", doc, user)
	}
	rules := strings.TrimSpace(m[1])
	channels := "&" + strings.TrimPrefix(keys, "~") // the revocation channel is named like the keys
	for _, r := range []struct{ old, new string }{{">PASSWORD", ">" + password}, {"~codingplan:*", keys}, {"&codingplan:*", channels}} {
		if !strings.Contains(rules, r.old) {
			t.Fatalf("the documented ACL has no %s: %s", r.old, rules)
		}
		rules = strings.Replace(rules, r.old, r.new, 1)
	}
	return []string{"user " + user + " " + rules, "user default off"}
}

// readRepoFile reads a file by its path from the top of the repository (where go.mod is).
func readRepoFile(t testing.TB, path string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
	b, err := os.ReadFile(filepath.Join(dir, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
