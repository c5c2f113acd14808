package wire

import (
	"strings"
	"testing"
)

func TestClip(t *testing.T) {
	for _, tt := range []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"short", "openai", 32, "openai"},
		{"exactly n", strings.Repeat("a", 32), 32, strings.Repeat("a", 32)},
		{"long", strings.Repeat("a", 40), 32, strings.Repeat("a", 32) + "..."},
		{"cut before a character", strings.Repeat("a", 31) + "é" + "b", 32, strings.Repeat("a", 31) + "..."},
		{"cut after a character", "é" + strings.Repeat("b", 10), 2, "é..."},
		{"invalid", "a\xffb", 32, "a?b"},
		{"invalid and long", "\xff" + strings.Repeat("a", 10), 4, "?aaa..."},
		{"zero", "abc", 0, "..."},
		{"empty", "", 5, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Clip(tt.s, tt.n); got != tt.want {
				t.Errorf("Clip(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
		})
	}
}
