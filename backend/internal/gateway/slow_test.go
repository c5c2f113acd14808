package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/upstream"
	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
	wire "github.com/codingplan/codingplan/shared"
)

// TestSlowConsumerWindow: a real websocket client that stops reading while a real (fake)
// provider streams at a steady pace is cancelled within slow_consumer of when it stopped, with
// the default send queue and write timeout, and the provider's stream is cancelled with it.
// Kernel socket buffers on both ends hold megabytes, so a check that waits for the send queue
// to fill starts its timer only once they are full: many seconds late at a model's pace.
func TestSlowConsumerWindow(t *testing.T) {
	const window, slack = 2 * time.Second, time.Second
	prov := providertest.New()
	t.Cleanup(prov.Close)
	chunks := make([]string, 100_000) // 100 s at the pace below: outlasts the test
	for i := range chunks {
		chunks[i] = strings.Repeat("x", 300)
	}
	prov.SetDefault(providertest.Reply{Chunks: chunks, Delay: time.Millisecond})
	router, err := upstream.New(upstream.Config{Models: []upstream.ModelConfig{{
		Name: "m", Aliases: []string{"default"}, Provider: upstream.KindOpenAIChat, BaseURL: prov.URL + "/v1",
	}}}, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(router.Close)
	obs := &fakeObserver{ended: make(chan StreamStats, 1)}
	h := newHarness(t, setup{cfg: Config{SlowConsumer: window}, deps: Deps{Router: Routes(router), Observer: obs}})
	c := h.dial(h.token(nil))
	c.request("c1")
	c.expect(wire.TypeDelta)
	stopped := time.Now() // the client reads nothing more until the stream has ended

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev, err := prov.Wait(ctx, providertest.Ended(1))
	providerEnded := time.Since(stopped)
	if err != nil {
		t.Fatalf("the provider's stream never ended: %v", err)
	}
	var st StreamStats
	select {
	case st = <-obs.ended:
	case <-ctx.Done():
		t.Fatal("the stream never ended")
	}
	streamEnded := time.Since(stopped)
	t.Logf("client stopped reading; stream cancelled (%s) after %v, provider stream ended (%s, %d chunks) after %v",
		st.Outcome, streamEnded.Round(time.Millisecond), ev.Reason, ev.Chunks, providerEnded.Round(time.Millisecond))
	if st.Outcome != string(wire.CodeCanceled) {
		t.Errorf("stream outcome %q, want %s", st.Outcome, wire.CodeCanceled)
	}
	if ev.Reason != providertest.ReasonClientGone {
		t.Errorf("provider stream ended with %q, want %s (cancelled)", ev.Reason, providertest.ReasonClientGone)
	}
	if providerEnded > window+slack {
		t.Errorf("provider stream cancelled %v after the client stopped reading, want within slow_consumer %v (+%v)", providerEnded, window, slack)
	}
	if streamEnded > window+slack {
		t.Errorf("stream ended (lease released) %v after the client stopped reading, want within slow_consumer %v (+%v)", streamEnded, window, slack)
	}
}

// TestSlowConsumerReader: a client that reads steadily is never taken for a slow consumer, on a
// stream that lasts longer than the window.
func TestSlowConsumerReader(t *testing.T) {
	const window = 500 * time.Millisecond
	chunks := make([]string, 1500) // about 1.5 s at the pace below: three windows
	for i := range chunks {
		chunks[i] = strings.Repeat("y", 300)
	}
	prov := providertest.New()
	t.Cleanup(prov.Close)
	prov.SetDefault(providertest.Reply{Chunks: chunks, Delay: time.Millisecond})
	router, err := upstream.New(upstream.Config{Models: []upstream.ModelConfig{{
		Name: "m", Aliases: []string{"default"}, Provider: upstream.KindOpenAIChat, BaseURL: prov.URL + "/v1",
	}}}, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(router.Close)
	h := newHarness(t, setup{cfg: Config{SlowConsumer: window}, deps: Deps{Router: Routes(router)}})
	c := h.dial(h.token(nil))
	start := time.Now()
	c.request("c1")
	n := 0
	for {
		f, err := c.read()
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == wire.TypeDelta {
			n += len(f.Text)
			continue
		}
		if f.Type != wire.TypeDone {
			t.Fatalf("after %d bytes in %v: got %+v, want done", n, time.Since(start), f)
		}
		break
	}
	if n != 1500*300 {
		t.Errorf("got %d bytes, want %d", n, 1500*300)
	}
	t.Logf("%d bytes read in %v with slow_consumer %v", n, time.Since(start).Round(time.Millisecond), window)
}
