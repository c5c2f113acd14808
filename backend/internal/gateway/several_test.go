package gateway

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/lease"
	"github.com/codingplan/codingplan/backend/internal/upstream"
	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
	wire "github.com/codingplan/codingplan/shared"
)

// requestN sends a completion request with id asking for n suggestions.
func (c *client) requestN(id string, n int) {
	c.t.Helper()
	c.send(wire.ClientFrame{Type: wire.TypeRequest, ID: id, Op: wire.OpCompletion, Model: "default",
		Completion: &wire.Completion{Prefix: "func add(a, b int) int {\n\treturn ", Language: "go", N: n}})
}

// suggestions reads the frames of stream id up to the done that carries usage, and returns
// each suggestion's text and the done frames.
func (c *client) suggestions(id string) (map[int]string, []wire.ServerFrame) {
	c.t.Helper()
	texts := map[int]string{}
	var dones []wire.ServerFrame
	for {
		f, err := c.read()
		if err != nil {
			c.t.Fatalf("reading stream %s: %v", id, err)
		}
		switch {
		case f.ID != id:
			c.t.Fatalf("frame of another stream: %+v", f)
		case f.Type == wire.TypeDelta && len(dones) == 0:
			texts[f.Index] += string(f.Text)
		case f.Type == wire.TypeDone:
			dones = append(dones, f)
			if f.Usage != nil {
				return texts, dones
			}
		default:
			c.t.Fatalf("unexpected frame %+v after %d done frames", f, len(dones))
		}
	}
}

// TestSeveralSuggestions runs a request for three suggestions on a lite plan (one stream at
// once) against the real lease pool and router: the OpenAI APIs make them in one provider
// request with n, Anthropic in three; either way the request holds one slot, so that a second
// request of the user waits and gets rate_limited while it runs. The client gets each
// suggestion's deltas by index, then one done per index, the last with the usage of all.
func TestSeveralSuggestions(t *testing.T) {
	choices := [][]string{{"a", " + b"}, {"b", " + a"}, {"a", " + b + 0"}}
	for _, kind := range []string{upstream.KindOpenAIChat, upstream.KindOpenAICompletions, upstream.KindAnthropic} {
		t.Run(kind, func(t *testing.T) {
			pool := realPool(t, "CODINGPLAN_TEST_VALKEY", lease.Config{MaxWait: 200 * time.Millisecond, TTL: 3 * time.Second})
			srv, router := fakeModel(t, kind)
			// Every provider request sends its first chunk, then waits for the test.
			proceed := make(chan struct{})
			var mu sync.Mutex
			calls := 0
			srv.Script(func(r *providertest.Request) providertest.Reply {
				pace := providertest.After(proceed)
				if kind != upstream.KindAnthropic {
					return providertest.Reply{Chunks: choices[0], Alternatives: choices[1:], AlternativeFinish: []string{"length"}, Pace: pace,
						Usage: &providertest.Usage{PromptTokens: 20, CompletionTokens: 6}}
				}
				mu.Lock()
				defer mu.Unlock()
				calls++
				return providertest.Reply{Chunks: choices[0], Pace: pace, Usage: &providertest.Usage{PromptTokens: 20, CompletionTokens: 2}}
			})
			h := newHarness(t, setup{cfg: Config{}, deps: Deps{Router: router, Leases: Pool(pool)}})
			lite := func(c *auth.Claims) { c.Plan = "lite" }

			c := h.dial(h.token(lite))
			c.requestN("c1", 3)
			first := c.expect(wire.TypeDelta) // the stream runs
			wantCalls := 1
			if kind == upstream.KindAnthropic {
				wantCalls = 3
			}
			if _, err := srv.Wait(waitCtxOf(t), providertest.Arrived(wantCalls)); err != nil {
				t.Fatal(err)
			}
			if n, err := pool.InUse(context.Background(), "user-1"); err != nil || n != 1 {
				t.Fatalf("in use while the request runs: %d (%v), want 1", n, err)
			}
			other := h.dial(h.token(lite))
			other.request("c2")
			other.expect(wire.TypeQueued)
			other.expectError("c2", wire.CodeRateLimited)

			close(proceed)
			texts, dones := c.suggestions("c1")
			texts[first.Index] = string(first.Text) + texts[first.Index]
			var starts []providertest.Event
			for _, e := range srv.Events() {
				if e.Kind == providertest.EventStart {
					starts = append(starts, e)
				}
			}
			if len(starts) != wantCalls {
				t.Errorf("the provider saw %d requests, want %d", len(starts), wantCalls)
			}
			wantUsage := wire.Usage{PromptTokens: 20, CompletionTokens: 6}
			wantFinish := []string{"stop", "length", "stop"}
			if kind == upstream.KindAnthropic {
				wantUsage = wire.Usage{PromptTokens: 60, CompletionTokens: 6}
				wantFinish = []string{"stop", "stop", "stop"}
				choices = [][]string{choices[0], choices[0], choices[0]}
			}
			for i, want := range choices {
				if texts[i] != strings.Join(want, "") {
					t.Errorf("suggestion %d: %q, want %q", i, texts[i], strings.Join(want, ""))
				}
			}
			if len(dones) != 3 {
				t.Fatalf("%d done frames, want 3: %+v", len(dones), dones)
			}
			for i, d := range dones {
				if d.Index != i || d.FinishReason != wantFinish[i] || (d.Usage != nil) != (i == 2) {
					t.Errorf("done %d: %+v", i, d)
				}
			}
			if *dones[2].Usage != wantUsage {
				t.Errorf("usage %+v, want %+v", *dones[2].Usage, wantUsage)
			}
			// The lease is released just after the last done is queued: wait for Valkey to see it.
			deadline := time.Now().Add(5 * time.Second)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				n, err := pool.InUse(context.Background(), "user-1")
				if err == nil && n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("in use 5s after the stream: %d (%v)", n, err)
				}
				<-tick.C
			}
		})
	}
}

// TestSeveralCancel: cancelling a request of three Anthropic suggestions ends all three
// provider requests, and the slot is free again.
func TestSeveralCancel(t *testing.T) {
	srv, router := fakeModel(t, upstream.KindAnthropic)
	srv.Script(func(*providertest.Request) providertest.Reply {
		return providertest.Reply{Chunks: []string{"a", "b"}, Pace: providertest.After(nil)}
	})
	leases := newCounter()
	h := newHarness(t, setup{deps: Deps{Router: router, Leases: leases.leases()}})
	c := h.dial(h.token(nil))
	c.requestN("c1", 3)
	c.expect(wire.TypeDelta)
	if _, err := srv.Wait(waitCtxOf(t), providertest.Arrived(3)); err != nil {
		t.Fatal(err)
	}
	if n := leases.inUse("user-1"); n != 1 {
		t.Errorf("%d leases for one request of three suggestions", n)
	}
	c.send(wire.ClientFrame{Type: wire.TypeCancel, ID: "c1"})
	for {
		f, err := c.read()
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == wire.TypeError {
			if f.ID != "c1" || f.Code != wire.CodeCanceled {
				t.Fatalf("error %+v, want canceled", f)
			}
			break
		}
		if f.Type != wire.TypeDelta {
			t.Fatalf("frame %+v before the error", f)
		}
	}
	leases.awaitRelease(t)
	for id := range int64(3) {
		ev, err := srv.Wait(waitCtxOf(t), providertest.Ended(id+1))
		if err != nil || ev.Reason != providertest.ReasonClientGone {
			t.Errorf("provider request %d: %+v (%v), want %s", id+1, ev, err, providertest.ReasonClientGone)
		}
	}
}

// waitCtxOf is a context for waiting on the fake provider's events.
func waitCtxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}
