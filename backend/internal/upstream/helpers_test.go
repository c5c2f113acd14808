package upstream

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
	wire "github.com/codingplan/codingplan/shared"
)

const (
	testKey    = "sk-test-0123"
	testKeyEnv = "CODINGPLAN_TEST_UPSTREAM_KEY"
	canary     = "CANARY-5e1f"
)

var httpKinds = []string{KindOpenAIChat, KindOpenAICompletions, KindAnthropic}

// newServer starts a fake provider closed at the end of the test.
func newServer(t testing.TB) *providertest.Server {
	t.Helper()
	srv := providertest.New()
	t.Cleanup(srv.Close)
	return srv
}

// baseURL is the base URL of kind at srv.
func baseURL(srv *providertest.Server, kind string) string {
	if kind == KindAnthropic {
		return srv.URL
	}
	return srv.URL + "/v1"
}

// testEnv is an Env with the test key and a transport pool closed at the end of the test.
func testEnv(t testing.TB) Env {
	pool := newTransports(0)
	t.Cleanup(pool.closeIdle)
	return Env{Transport: pool.get, Getenv: func(k string) string {
		if k == testKeyEnv {
			return testKey
		}
		return ""
	}}
}

// modelConfig is a model of kind served by srv, changed by edit when not nil.
func modelConfig(srv *providertest.Server, kind, model string, edit func(*ModelConfig)) ModelConfig {
	mc := ModelConfig{Name: kind + "-" + model, Provider: kind, BaseURL: baseURL(srv, kind), APIKeyEnv: testKeyEnv, Model: model}
	if edit != nil {
		edit(&mc)
	}
	return mc
}

// newProvider builds a provider of kind served by srv.
func newProvider(t testing.TB, srv *providertest.Server, kind, model string, edit func(*ModelConfig)) Provider {
	t.Helper()
	p, err := builtinFactories[kind](modelConfig(srv, kind, model, edit), testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// completion is a completion request around canary content.
func completion() *Request {
	return &Request{Op: wire.OpCompletion, Completion: &wire.Completion{
		Prefix: "func add(a, b int) int {\n\t// " + canary + "\n\t", Suffix: "\n}\n", Language: "go", Path: "add.go",
	}}
}

// collector is a Sink that records each piece of output and counts flushes.
type collector struct {
	mu      sync.Mutex
	chunks  []string // of suggestion 0
	others  map[int][]string
	flushes int
	onFlush func(n int) // called at each flush with the number of pieces so far, if set
	calls   int         // sink calls running now
	overlap bool        // two sink calls ran at once
}

func (c *collector) sink(index int, p []byte) error {
	c.mu.Lock()
	c.calls++
	c.overlap = c.overlap || c.calls > 1
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.calls--
		c.mu.Unlock()
	}()
	// Let another caller in, if there is one, to catch calls that overlap.
	runtime.Gosched()
	c.mu.Lock()
	if len(p) > 0 {
		if index == 0 {
			c.chunks = append(c.chunks, string(p))
		} else {
			if c.others == nil {
				c.others = map[int][]string{}
			}
			c.others[index] = append(c.others[index], string(p))
		}
		c.mu.Unlock()
		return nil
	}
	c.flushes++
	n := len(c.chunks)
	c.mu.Unlock()
	if c.onFlush != nil {
		c.onFlush(n)
	}
	return nil
}

// text is the text of suggestion 0.
func (c *collector) text() string { return c.textOf(0) }

// textOf is the text of suggestion index.
func (c *collector) textOf(index int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if index == 0 {
		return strings.Join(c.chunks, "")
	}
	return strings.Join(c.others[index], "")
}

// waitCtx is a context for waiting on the fake's events.
func waitCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitEnd waits for the end of request id at srv and returns its reason.
func waitEnd(t testing.TB, srv *providertest.Server, id int64) string {
	t.Helper()
	ev, err := srv.Wait(waitCtx(t), providertest.Ended(id))
	if err != nil {
		t.Fatalf("request %d did not end at the provider: %v", id, err)
	}
	return ev.Reason
}

// waitStarts waits until srv has received n requests.
func waitStarts(t testing.TB, srv *providertest.Server, n int) {
	t.Helper()
	if _, err := srv.Wait(waitCtx(t), providertest.Arrived(n)); err != nil {
		t.Errorf("waiting for %d requests: %v", n, err)
	}
}

// starts counts the requests srv received.
func starts(srv *providertest.Server) int {
	n := 0
	for _, e := range srv.Events() {
		if e.Kind == providertest.EventStart {
			n++
		}
	}
	return n
}

// blockUntilGone is a Pace that lets chunk 0 out and then waits for the client to leave.
var blockUntilGone = providertest.After(nil)
