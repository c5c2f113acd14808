package ngram

import (
	"strings"
	"testing"
)

// TestOtherLanguagesLearnNothingFromGoroot: the toolchain's tree teaches Go
// only, so a Python file never gets the toolchain's gdb script back; a
// language with no training text is completed from the request alone.
func TestOtherLanguagesLearnNothingFromGoroot(t *testing.T) {
	cfg := Config{StateDir: t.TempDir(), goroot: "testdata/goroot", MinCount: 1, VocabMinCount: 1, HoldOutPercent: -1}
	m := openModel(t, cfg)
	if !m.trained(familyGo) || m.trained(family("python")) {
		t.Fatalf("trained on Go %v, on Python %v; want Go only", m.trained(familyGo), m.trained(family("python")))
	}
	const repeated = "def f(a, b):\n    x = compute(a, b)\n    y = compute(a, b)\n    z = compute(a, b)\n    w = compute("
	tests := []struct {
		name, prefix string
		ok           func(string) bool
	}{
		{"no gdb", "import sys\n\nif __name__ ", func(s string) bool { return s == "" }},
		{"no gdb after a partial word", "import sys\n\nclass Cmd(gdb.", func(s string) bool { return s == "" }},
		{"no copy of the line being typed", "people = load()\nfor p in sorted(people, key=", func(s string) bool { return !strings.Contains(s, "people") }},
		{"the request's own code", repeated, func(s string) bool { return s == "a, b" || s == "a, b)" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, multiline := range []bool{false, true} {
				if got, _ := complete(t, m, tt.prefix, "", "python", 0, multiline); !tt.ok(got) {
					t.Errorf("multiline %v: suggestion %q", multiline, got)
				}
			}
		})
	}
}
