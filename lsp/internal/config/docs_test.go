package config

import (
	"os"
	"strings"
	"testing"
)

// TestDocumented checks that docs/configuration.md describes every setting, with its default.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Language server\n")
	if !ok {
		t.Fatal(`docs/configuration.md has no "## Language server" section`)
	}
	if next := strings.Index(section, "\n## "); next >= 0 {
		section = section[:next]
	}
	for _, key := range Keys() {
		if !strings.Contains(section, "| `"+key+"` |") {
			t.Errorf("setting %s is not in the table of docs/configuration.md", key)
		}
	}
	d := Default()
	for key, def := range map[string]string{
		"backendUrl": d.BackendURL, "multiline": d.Multiline, "trace": d.Trace,
	} {
		if !strings.Contains(section, "| `"+key+"` | `"+def+"` |") {
			t.Errorf("the documented default of %s is not %q", key, def)
		}
	}
}
