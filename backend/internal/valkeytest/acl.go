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
	doc := readRepoFile(t, "docs/operations.md")
	m := regexp.MustCompile(`(?m)^ACL SETUSER codingplan (.*)$`).FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("docs/operations.md has no line ACL SETUSER codingplan ...")
	}
	rules := m[1]
	channels := "&" + strings.TrimPrefix(keys, "~") // the revocation channel is named like the keys
	for _, r := range []struct{ old, new string }{{">PASSWORD", ">" + password}, {"~codingplan:*", keys}, {"&codingplan:*", channels}} {
		if !strings.Contains(rules, r.old) {
			t.Fatalf("the documented ACL has no %s: %s", r.old, rules)
		}
		rules = strings.Replace(rules, r.old, r.new, 1)
	}
	return []string{"user codingplan " + rules, "user default off"}
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
