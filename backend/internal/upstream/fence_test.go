package upstream

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// strip runs text through a fenceStripper in pieces of n bytes (0: whole).
func strip(t *testing.T, text string, n int) string {
	t.Helper()
	var got strings.Builder
	f := &fenceStripper{sink: func(p []byte) error { got.Write(p); return nil }}
	for len(text) > 0 {
		k := len(text)
		if n > 0 {
			k = min(n, k)
		}
		if err := f.write([]byte(text[:k])); err != nil {
			t.Fatal(err)
		}
		text = text[k:]
	}
	if err := f.finish(); err != nil {
		t.Fatal(err)
	}
	return got.String()
}

func TestFenceStripper(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no fence", "return a + b\n", "return a + b\n"},
		{"fenced", "```go\nreturn a + b\n```", "return a + b"},
		{"fenced with newline after", "```go\nreturn a + b\n```\n", "return a + b"},
		{"text after the fence dropped", "```\nx := 1\n```\nThis sets x.", "x := 1"},
		{"leading blank lines", "\n\n  ```python\nprint(1)\n```", "print(1)"},
		{"multi-line body", "```js\na()\n\nb()\n  c()\n```", "a()\n\nb()\n  c()"},
		{"inline backticks kept", "```\nuse `x` here\n`y`\n```", "use `x` here\n`y`"},
		{"nested fence with info kept", "```md\n```go\nx\n```", "```go\nx"},
		{"unclosed fence", "```go\nx := 1\n", "x := 1\n"},
		{"fence at end without newline", "```go\nx := 1\n``", "x := 1\n``"},
		{"closing fence with spaces", "```\nx\n  ```  \nmore", "x"},
		{"empty body", "```go\n```", ""},
		{"backticks in the middle not a fence", "a ```b```\n", "a ```b```\n"},
		{"only whitespace", "  \n", "  \n"},
		{"backtick start that is no fence", "`x` is", "`x` is"},
		{"long info line is no fence", "```" + strings.Repeat("a", 200) + "\nx", "```" + strings.Repeat("a", 200) + "\nx"},
		{"four spaces is no closing fence", "```\nx\n    ```\ny\n```", "x\n    ```\ny"},
		{"trailing newline kept before text", "```\na\nb\n", "a\nb\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{0, 1, 2, 3, 5} {
				if got := strip(t, tt.in, n); got != tt.want {
					t.Errorf("pieces of %d: got %q, want %q", n, got, tt.want)
				}
			}
		})
	}
}

// TestFenceStripperStreams checks that text inside a fence is not held back longer than
// needed: each complete line is out before the next piece arrives.
func TestFenceStripperStreams(t *testing.T) {
	var got strings.Builder
	f := &fenceStripper{sink: func(p []byte) error { got.Write(p); return nil }}
	steps := []struct{ in, want string }{
		{"```go\n", ""},
		{"func a() {", "func a() {"},
		{"\n\treturn", "func a() {\n\treturn"},
		{" 1\n", "func a() {\n\treturn 1"},
		{"}", "func a() {\n\treturn 1\n}"},
	}
	for _, s := range steps {
		if err := f.write([]byte(s.in)); err != nil {
			t.Fatal(err)
		}
		if got.String() != s.want {
			t.Fatalf("after %q: got %q, want %q", s.in, got.String(), s.want)
		}
	}
}

func TestFenceStripperSinkError(t *testing.T) {
	boom := errors.New("boom")
	f := &fenceStripper{sink: func([]byte) error { return boom }}
	if err := f.write([]byte("abc")); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the sink's error", err)
	}
}

// TestFenceStrippers: each suggestion of a stream has its own stripper, so that interleaved
// suggestions, fenced or not, come out as if each were streamed alone; a flush goes on.
func TestFenceStrippers(t *testing.T) {
	got := map[int]string{}
	flushes := 0
	fs := newFenceStrippers(3, func(i int, p []byte) error {
		if len(p) == 0 {
			flushes++
		}
		got[i] += string(p)
		return nil
	})
	for _, in := range []struct {
		index int
		text  string
	}{
		{0, "```go\n"}, {1, "plain "}, {2, "```\n"}, {0, "a + b\n"}, {1, "text\n"}, {2, "b + a"},
		{0, "```\n"}, {1, "```"}, {0, "dropped"}, {2, "\n```"},
	} {
		if err := fs.write(in.index, []byte(in.text)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.write(2, nil); err != nil {
		t.Fatal(err)
	}
	if err := fs.finish(); err != nil {
		t.Fatal(err)
	}
	want := map[int]string{0: "a + b", 1: "plain text\n```", 2: "b + a"}
	if !reflect.DeepEqual(got, want) || flushes == 0 {
		t.Errorf("got %v after %d flushes, want %v after some", got, flushes, want)
	}
}
