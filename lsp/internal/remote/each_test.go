package remote

import (
	"context"
	"sync"
	"testing"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
	wire "github.com/codingplan/codingplan/shared"
)

// TestStreamEach: a request for three suggestions gets each delta with its index, goes on past
// the done frames of suggestions 0 and 1, and ends with the last one; Stream sees suggestion 0.
func TestStreamEach(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", nil)
	fc := recv(t, b.conns, "a connection")
	h.waitLink(t, lspx.StateReady)

	type result struct {
		texts [3]string
		done  wire.ServerFrame
		err   error
	}
	ch := make(chan result, 1)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	wg.Go(func() {
		var r result
		req := wire.ClientFrame{Op: wire.OpCompletion, Completion: &wire.Completion{Prefix: "x", N: 3}}
		r.done, r.err = h.c.StreamEach(context.Background(), req, func(i int, text []byte) { r.texts[i] += string(text) })
		ch <- r
	})
	f := fc.next(t)
	if f.Completion == nil || f.Completion.N != 3 {
		t.Fatalf("request %+v, want n=3", f)
	}
	for _, d := range []wire.ServerFrame{
		{Type: wire.TypeDelta, ID: f.ID, Text: "a"},
		{Type: wire.TypeDelta, ID: f.ID, Index: 2, Text: "c"},
		{Type: wire.TypeDelta, ID: f.ID, Index: 1, Text: "b"},
		{Type: wire.TypeDelta, ID: f.ID, Index: 1, Text: "b"},
		{Type: wire.TypeDone, ID: f.ID, FinishReason: wire.FinishStop},
		{Type: wire.TypeDone, ID: f.ID, Index: 1, FinishReason: wire.FinishLength},
		{Type: wire.TypeDone, ID: f.ID, Index: 2, FinishReason: wire.FinishStop, Usage: &wire.Usage{PromptTokens: 3, CompletionTokens: 4}},
	} {
		fc.send(t, d)
	}
	r := recv(t, ch, "StreamEach to return")
	if r.err != nil || r.texts != [3]string{"a", "bb", "c"} || r.done.Index != 2 || r.done.Usage == nil {
		t.Fatalf("got %+v", r)
	}
	// The stream's id is free again: a one-suggestion stream on the same connection works.
	res := goStream(t, context.Background(), h.c, "y")
	g := fc.next(t)
	fc.send(t, wire.ServerFrame{Type: wire.TypeDelta, ID: g.ID, Text: "ok"})
	fc.send(t, wire.ServerFrame{Type: wire.TypeDone, ID: g.ID, FinishReason: wire.FinishStop})
	if got := recv(t, res, "Stream to return"); got.err != nil || got.text != "ok" {
		t.Fatalf("then %+v", got)
	}
}
