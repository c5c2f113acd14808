package e2e

import (
	"context"
	"strings"
	"testing"
)

// TestGhostFirstLine is issue 13 through the real processes: with the provider streaming a
// four-line block as 20 tokens over two seconds, a multi-line request is answered with the first
// line before the provider's stream ends, and once it has ended, the request just past that line
// (the user accepted it) is answered with the next lines without a second provider request.
func TestGhostFirstLine(t *testing.T) {
	const block = "fmt.Println(\"one\")\n\tfmt.Println(\"two\")\n\tfmt.Println(\"three\")\n\tfmt.Println(\"four\")"
	first, rest, _ := strings.Cut(block, "\n")
	rest = "\n" + rest
	s := startSystem(t, options{reply: block, paceArgs: []string{"--chunks", "20", "--stream-over", "2s"}})
	ed := s.startEditor(map[string]any{"token": s.token("user-"+randHex(4), "pro")})
	ctx := testContext(t)
	if err := ed.waitReady(ctx); err != nil {
		t.Fatalf("the server never said it is ready: %v", err)
	}

	const uri = "file:///work/project/main.go"
	ed.open(uri, "go", "package main\n\nimport \"fmt\"\n\nfunc main() {\n\t\n}\n")
	cursor := position{Line: 5, Character: 1} // the blank line in main(): a multi-line request
	var list struct{ Items []inlineItem }
	if err := ed.call(ctx, "textDocument/inlineCompletion", inlineParams(uri, cursor), &list); err != nil {
		t.Fatalf("inlineCompletion: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].InsertText != first {
		t.Fatalf("first answer %+v, want the first line %q", list.Items, first)
	}
	// The provider's stream is still running: its end is not among the events read so far.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.waitEvent(done, "end", "test-model"); err == nil {
		t.Fatal("the provider's stream had ended before the first line was answered")
	}
	if _, err := s.waitEvent(ctx, "end", "test-model"); err != nil {
		t.Fatalf("the stream never ended: %v", err)
	}

	// The user accepts the line; the next request, at its end, is typed-ahead's.
	ed.notify("textDocument/didChange", map[string]any{
		"textDocument":   map[string]any{"uri": uri, "version": 2},
		"contentChanges": []any{map[string]any{"range": lspRange{Start: cursor, End: cursor}, "text": first}},
	})
	next := position{Line: 5, Character: 1 + len(first)}
	if err := ed.call(ctx, "textDocument/inlineCompletion", inlineParams(uri, next), &list); err != nil {
		t.Fatalf("inlineCompletion after the first line: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].InsertText != rest {
		t.Fatalf("after the first line: %+v, want the rest %q", list.Items, rest)
	}
	if _, err := s.waitEvent(done, "start", ""); err == nil {
		t.Error("a second request reached the provider")
	}
}
