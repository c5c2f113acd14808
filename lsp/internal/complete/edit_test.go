package complete

import "testing"

func TestMinimalEdit(t *testing.T) {
	tests := []struct {
		name, text string
		start, end int
		newText    string
		ws, we     int
		wantText   string
	}{
		{"one char", "a - b", 0, 5, "a + b", 2, 3, "+"},
		{"same", "abc", 0, 3, "abc", 3, 3, ""},
		{"insert", "ab", 0, 2, "aXb", 1, 1, "X"},
		{"delete", "aXb", 0, 3, "ab", 1, 2, ""},
		{"offset selection", "zz a - b zz", 3, 8, "a + b", 5, 6, "+"},
		{"no split of a multibyte char", "é", 0, 2, "è", 0, 2, "è"},
		{"shared lead byte", "aéb", 0, 4, "aèb", 1, 3, "è"},
		{"no split of CRLF at the prefix", "a\r\nb", 0, 4, "a\rc", 1, 4, "\rc"},
		{"no split of CRLF at the suffix", "x\r\n", 0, 3, "y\n", 0, 3, "y\n"},
		{"everything", "abc", 0, 3, "xyz", 0, 3, "xyz"},
		{"repeated chars", "aaa", 0, 3, "aaaa", 3, 3, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, we, got := MinimalEdit(tt.text, tt.start, tt.end, tt.newText)
			if ws != tt.ws || we != tt.we || got != tt.wantText {
				t.Errorf("MinimalEdit = %d %d %q, want %d %d %q", ws, we, got, tt.ws, tt.we, tt.wantText)
			}
			if applied := tt.text[:ws] + got + tt.text[we:]; applied != tt.text[:tt.start]+tt.newText+tt.text[tt.end:] {
				t.Errorf("applying gives %q", applied)
			}
		})
	}
}

func TestCleanOutput(t *testing.T) {
	tests := []struct {
		name, out, selection, nl, want string
	}{
		{"fence removed", "```go\nx := 1\n```", "y := 2", "\n", "x := 1"},
		{"fence without language", "```\nx\n```\n", "y", "\n", "x"},
		{"final newline kept like the selection", "x", "y\n", "\n", "x\n"},
		{"indentation restored", "return 1", "\treturn 2", "\n", "\treturn 1"},
		{"CRLF document", "a\nb", "c\r\nd\r\n", "\r\n", "a\r\nb\r\n"},
		{"CRLF in the answer", "a\r\nb", "c", "\n", "a\nb"},
		{"inline backticks stay", "`x`", "y", "\n", "`x`"},
	}
	for _, tt := range tests {
		if got := CleanOutput(tt.out, tt.selection, tt.nl); got != tt.want {
			t.Errorf("%s: CleanOutput = %q, want %q", tt.name, got, tt.want)
		}
	}
}
