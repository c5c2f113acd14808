package wire

import (
	"strings"
	"unicode/utf8"
)

// Clip shortens s, a string that came from outside (a name a client chose, a peer's error
// message), before it goes into an error message or a log: longer than n bytes, it is cut at
// the last character boundary at or before n and "..." is appended; invalid UTF-8 becomes "?".
// It is the module's one clip: callers differ only in n.
func Clip(s string, n int) string {
	if len(s) > n {
		cut := max(n, 0)
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
