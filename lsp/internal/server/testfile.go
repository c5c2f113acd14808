package server

import (
	"path"
	"regexp"
	"strings"
)

// Where "Write tests" puts its tests: the test file the language's usual tooling finds, beside
// the source file. docs/editors.md shows this table.

// testRule names the test file of a source file whose name ends in ext.
type testRule struct {
	ext    string
	isTest func(base string) bool        // base is already a test file
	name   func(stem, ext string) string // the test file's name, from the source's stem and ext
}

func suffixed(sfx string) testRule {
	return testRule{
		isTest: func(base string) bool { return strings.HasSuffix(strings.TrimSuffix(base, path.Ext(base)), sfx) },
		name:   func(stem, ext string) string { return stem + sfx + ext },
	}
}

func infixed(infix string) testRule { // foo.test.ts
	return testRule{
		isTest: func(base string) bool { return strings.Contains(base, infix+".") },
		name:   func(stem, ext string) string { return stem + infix + ext },
	}
}

func prefixed(pfx string) testRule { // test_foo.py
	return testRule{
		isTest: func(base string) bool {
			return strings.HasPrefix(base, pfx) || strings.HasSuffix(strings.TrimSuffix(base, path.Ext(base)), "_test")
		},
		name: func(stem, ext string) string { return pfx + stem + ext },
	}
}

// testRules maps a source file's extension to its test file's rule.
var testRules = func() map[string]testRule {
	rules := map[string]testRule{}
	add := func(r testRule, exts ...string) {
		for _, e := range exts {
			r.ext = e
			rules[e] = r
		}
	}
	add(suffixed("_test"), ".go", ".rb", ".c", ".cc", ".cpp", ".ex")
	add(prefixed("test_"), ".py")
	add(infixed(".test"), ".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
	add(suffixed("Test"), ".java", ".kt", ".php", ".swift")
	add(suffixed("Tests"), ".cs")
	return rules
}()

// goPackage finds a Go file's package clause.
var goPackage = regexp.MustCompile(`(?m)^package[ \t]+([A-Za-z_][A-Za-z0-9_]*)`)

// testFileFor returns the path of the test file for the source file at p (slash-separated),
// and false when the tests belong in the file itself: it is a test file already, or its
// language keeps unit tests beside the code (Rust's #[cfg(test)] module) or has no rule.
func testFileFor(p string) (string, bool) {
	dir, base := path.Split(p)
	ext := path.Ext(base)
	rule, ok := testRules[ext]
	if !ok || base == ext || rule.isTest(base) {
		return "", false
	}
	name := rule.name(strings.TrimSuffix(base, ext), ext)
	if ext == ".java" || ext == ".kt" {
		// Maven and Gradle keep tests in src/test/<lang>/, mirroring src/main/<lang>/.
		lang := strings.TrimPrefix(ext, ".")
		if lang == "kt" {
			lang = "kotlin"
		}
		if i := strings.LastIndex(dir, "/src/main/"+lang+"/"); i >= 0 {
			dir = dir[:i] + "/src/test/" + lang + "/" + dir[i+len("/src/main/"+lang+"/"):]
		}
	}
	if ext == ".ex" { // Elixir: lib/foo.ex -> test/foo_test.exs
		name += "s"
		if i := strings.LastIndex(dir, "/lib/"); i >= 0 {
			dir = dir[:i] + "/test/" + dir[i+len("/lib/"):]
		}
	}
	return dir + name, true
}
