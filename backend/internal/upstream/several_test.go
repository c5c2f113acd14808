package upstream

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
	wire "github.com/codingplan/codingplan/shared"
)

// severalChoices are the texts of three suggestions, cut into pieces of different counts so
// that the fake's interleaving ends one choice before the others.
var severalChoices = [][]string{{"return", " a", " + b"}, {"return", " b"}, {"return", " a", " +", " b", " + 0"}}

// TestSeveralOneCall: the OpenAI APIs make n suggestions in one request with "n", streamed
// as interleaved choices, which reach the sink by index, with each one's finish reason and the
// provider's usage of all of them.
func TestSeveralOneCall(t *testing.T) {
	for _, kind := range []string{KindOpenAIChat, KindOpenAICompletions} {
		t.Run(kind, func(t *testing.T) {
			srv := newServer(t)
			var mu sync.Mutex
			var got []*providertest.Request
			srv.Script(func(r *providertest.Request) providertest.Reply {
				mu.Lock()
				got = append(got, r)
				mu.Unlock()
				return providertest.Reply{Chunks: severalChoices[0], Alternatives: severalChoices[1:], AlternativeFinish: []string{"length"},
					Usage: &providertest.Usage{PromptTokens: 40, CompletionTokens: 10}}
			})
			req := completion()
			req.N = 3
			c := &collector{}
			res, err := newProvider(t, srv, kind, "m", nil).Stream(context.Background(), req, c.sink)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].N != 3 {
				t.Fatalf("the provider saw %d requests (n = %v), want 1 with n 3", len(got), got)
			}
			for i, want := range severalChoices {
				if s := c.textOf(i); s != strings.Join(want, "") {
					t.Errorf("suggestion %d: %q, want %q", i, s, strings.Join(want, ""))
				}
			}
			want := Result{FinishReason: wire.FinishStop, Later: [2]string{wire.FinishLength, wire.FinishStop},
				Usage: wire.Usage{PromptTokens: 40, CompletionTokens: 10}}
			if res != want {
				t.Errorf("result %+v, want %+v", res, want)
			}
		})
	}
}

// TestOneSuggestionSendsNoN: a request of one suggestion (N 0 or 1) sends no n, as before.
func TestOneSuggestionSendsNoN(t *testing.T) {
	for _, n := range []int{0, 1} {
		for _, kind := range httpKinds {
			srv := newServer(t)
			var body string
			srv.Script(func(r *providertest.Request) providertest.Reply {
				body = string(r.Body)
				return providertest.Reply{Chunks: []string{"x"}}
			})
			req := completion()
			req.N = n
			if _, err := newProvider(t, srv, kind, "m", nil).Stream(context.Background(), req, (&collector{}).sink); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(body, `"n":`) {
				t.Errorf("%s, N %d: the body has n: %s", kind, n, body)
			}
		}
	}
}

// TestSeveralCalls: Anthropic has no n: three suggestions are three requests, run at once,
// whose output reaches the sink by index, one call at a time, and whose usage adds up.
func TestSeveralCalls(t *testing.T) {
	srv := newServer(t)
	var mu sync.Mutex
	started := 0
	all := make(chan struct{})
	srv.Script(func(r *providertest.Request) providertest.Reply {
		mu.Lock()
		i := started
		if started++; started == 3 {
			close(all)
		}
		mu.Unlock()
		finish := "stop"
		if i == 1 {
			finish = "length"
		}
		// Each request waits for the other two to arrive before its first chunk: they run
		// at once.
		return providertest.Reply{Chunks: []string{"s", "uggestion"}, FinishReason: finish,
			Usage: &providertest.Usage{PromptTokens: 10, CompletionTokens: 2},
			Pace: func(ctx context.Context, _ int) error {
				select {
				case <-all:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}}
	})
	req := completion()
	req.N = 3
	c := &collector{}
	res, err := newProvider(t, srv, KindAnthropic, "m", nil).Stream(waitCtx(t), req, c.sink)
	if err != nil {
		t.Fatal(err)
	}
	if n := starts(srv); n != 3 {
		t.Errorf("the provider saw %d requests, want 3", n)
	}
	for i := range 3 {
		if s := c.textOf(i); s != "suggestion" {
			t.Errorf("suggestion %d: %q", i, s)
		}
	}
	if c.overlap {
		t.Error("two calls reached the sink at once")
	}
	// Which request became which suggestion depends on the order they were sent in: one of
	// them ended with length.
	if res.Usage != (wire.Usage{PromptTokens: 30, CompletionTokens: 6}) {
		t.Errorf("usage %+v, want the sum of the three", res.Usage)
	}
	lengths := 0
	for i := range 3 {
		if res.Finish(i) == wire.FinishLength {
			lengths++
		}
	}
	if lengths != 1 {
		t.Errorf("result %+v: want one suggestion ended by length", res)
	}
	for _, ev := range srv.Events() {
		if ev.Kind == providertest.EventEnd && ev.Reason != providertest.ReasonDone {
			t.Errorf("request %d ended with %q", ev.ID, ev.Reason)
		}
	}
}

// TestSeveralCallsFail: when one of the calls fails, the others are cancelled and the error
// is the failed call's.
func TestSeveralCallsFail(t *testing.T) {
	srv := newServer(t)
	var mu sync.Mutex
	n := 0
	srv.Script(func(*providertest.Request) providertest.Reply {
		mu.Lock()
		defer mu.Unlock()
		if n++; n == 2 {
			return providertest.Reply{Status: 500}
		}
		return providertest.Reply{Hang: true}
	})
	req := completion()
	req.N = 3
	_, err := newProvider(t, srv, KindAnthropic, "m", nil).Stream(waitCtx(t), req, (&collector{}).sink)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("got %v, want ErrFailed", err)
	}
	// Every request that reached the provider ended (one that had not is never sent).
	for _, ev := range srv.Events() {
		if ev.Kind != providertest.EventStart {
			continue
		}
		if r := waitEnd(t, srv, ev.ID); r != providertest.ReasonClientGone && r != providertest.ReasonStatus {
			t.Errorf("request %d ended with %q", ev.ID, r)
		}
	}
}

// TestSeveralLocal: the local model makes two suggestions one after the other; being
// deterministic, they are the same.
func TestSeveralLocal(t *testing.T) {
	mc, m := localModel(t)
	p := NewLocal(mc, m)
	one, err := p.Stream(t.Context(), completionRequest(localPrefix), (&collector{}).sink)
	if err != nil {
		t.Fatal(err)
	}
	req := completionRequest(localPrefix)
	req.N = 2
	c := &collector{}
	res, err := p.Stream(t.Context(), req, c.sink)
	if err != nil {
		t.Fatal(err)
	}
	if c.text() == "" || c.textOf(1) != c.text() {
		t.Errorf("suggestions %q and %q, want the same completion", c.text(), c.textOf(1))
	}
	want := Result{FinishReason: one.FinishReason, Later: [2]string{one.FinishReason},
		Usage: wire.Usage{PromptTokens: 2 * one.Usage.PromptTokens, CompletionTokens: 2 * one.Usage.CompletionTokens}}
	if res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
}

// TestResultFinish reads each suggestion's finish reason, stop when none was given.
func TestResultFinish(t *testing.T) {
	r := Result{FinishReason: wire.FinishLength, Later: [2]string{"", wire.FinishLength}}
	for i, want := range []string{wire.FinishLength, wire.FinishStop, wire.FinishLength} {
		if got := r.Finish(i); got != want {
			t.Errorf("Finish(%d) = %q, want %q", i, got, want)
		}
	}
}

// TestChunkSeveral decodes the chunks of a stream of three choices: each choice's text and
// finish reason by its index, several choices in one chunk, a choice not asked for skipped,
// and the template of each choice taking only that choice's events.
func TestChunkSeveral(t *testing.T) {
	chat := func(choices string) []byte {
		return []byte(`{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1,"model":"m","choices":[` + choices + `],"usage":null}`)
	}
	content := func(index, text string) []byte {
		return chat(`{"index":` + index + `,"delta":{"content":"` + text + `"},"logprobs":null,"finish_reason":null}`)
	}
	events := [][]byte{
		chat(`{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}`),
		chat(`{"index":1,"delta":{"role":"assistant","content":""},"finish_reason":null}`),
		content("1", "b"), content("1", "B"), // learned, then the template of choice 1
		content("0", "a"), content("0", "A"), // choice 0's own template
		content("1", "β"), content("2", "c"), content("2", "C"), content("3", "x"), content("3", "y"),
		chat(`{"index":2,"delta":{"content":"!"}},{"index":0,"delta":{"content":"?"}}`),
		chat(`{"index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"length"}`),
		chat(`{"index":2,"delta":{},"finish_reason":"stop"}`),
		[]byte(`{"id":"chatcmpl-7","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":8}}`),
		[]byte(`[DONE]`),
	}
	c := &openAIChat{chunk: openAIChunk{n: 3}}
	got := runEvents(t, c, events)
	want := outcome{Text: "aA?", Other: map[int]string{1: "bBβ", 2: "cC!"}, End: true, UsageSeen: true,
		Res: Result{FinishReason: wire.FinishStop, Later: [2]string{wire.FinishLength, wire.FinishStop},
			Usage: wire.Usage{PromptTokens: 9, CompletionTokens: 8}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if hits := [3]int{c.chunk.tmpl[0].hits, c.chunk.tmpl[1].hits, c.chunk.tmpl[2].hits}; hits != [3]int{1, 2, 1} {
		t.Errorf("template hits by choice %v, want [1 2 1]", hits)
	}
	sameAsPerEvent(t, func() codec { return &openAIChat{chunk: openAIChunk{n: 3}} }, events)
	// A codec of one suggestion reads choice 0 only, as before.
	if one := runEvents(t, &openAIChat{}, events); one.Text != "aA?" || one.Other != nil {
		t.Errorf("one suggestion: %+v", one)
	}
}
