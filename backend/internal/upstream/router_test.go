package upstream

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
	wire "github.com/codingplan/codingplan/shared"
)

// fakeProvider is a Provider whose Stream is a function field.
type fakeProvider struct {
	stream func(ctx context.Context, req *Request, sink Sink) (Result, error)
}

func (f fakeProvider) Stream(ctx context.Context, req *Request, sink Sink) (Result, error) {
	return f.stream(ctx, req, sink)
}

// newRouter builds a router whose providers read the test key.
func newRouter(t *testing.T, cfg Config, factories map[string]Factory) *Router {
	t.Helper()
	env := testEnv(t)
	r, err := New(cfg, Options{Factories: factories, Getenv: env.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func TestConfigTOML(t *testing.T) {
	const doc = `
default_model = "fast"
max_attempts = 4
retry_backoff = "50ms"
[plan_models]
lite = ["fast"]
pro = ["*"]
[[models]]
name = "gpt"
aliases = ["fast"]
provider = "openai-chat"
base_url = "https://api.example.com/v1/"
api_key_env = "OPENAI_API_KEY"
model = "gpt-4o-mini"
max_tokens = 128
stop = ["\n\n"]
fallback = ["claude"]
timeouts = { connect = "2s", first_token = "3s", idle = "4s", total = "1m" }
[[models]]
name = "claude"
provider = "anthropic"
base_url = "https://api.example.com"
[models.options]
x = "y"
`
	var cfg Config
	if _, err := toml.Decode(doc, &cfg); err != nil {
		t.Fatal(err)
	}
	m := cfg.Models[0]
	if cfg.DefaultModel != "fast" || cfg.MaxAttempts != 4 || cfg.RetryBackoff != 50*time.Millisecond ||
		len(cfg.PlanModels["lite"]) != 1 || m.Timeouts != (Timeouts{2 * time.Second, 3 * time.Second, 4 * time.Second, time.Minute}) ||
		m.Fallback[0] != "claude" || m.Stop[0] != "\n\n" || cfg.Models[1].Options["x"] != "y" {
		t.Errorf("decoded %+v", cfg)
	}
	r := newRouter(t, cfg, nil)
	if r.DefaultModel() != "gpt" {
		t.Errorf("default %q", r.DefaultModel())
	}
}

func TestResolve(t *testing.T) {
	local := map[string]Factory{KindLocal: func(ModelConfig, Env) (Provider, error) { return fakeProvider{}, nil }}
	cfg := Config{
		Models: []ModelConfig{
			{Name: "a", Aliases: []string{"a1"}, Provider: KindLocal, Fallback: []string{"b"}},
			{Name: "b", Provider: KindLocal},
			{Name: "c", Provider: KindLocal},
		},
		DefaultModel: "a1",
		PlanModels:   map[string][]string{"lite": {"a1"}, "pro": {"*"}, "*": {"a", "c"}},
	}
	r := newRouter(t, cfg, local)
	tests := []struct {
		plan, requested string
		model           string
		chain           int
		err             error
	}{
		{"lite", "", "a", 1, nil}, // b is not a lite model: no fallback to it
		{"lite", "a", "a", 1, nil},
		{"lite", "b", "", 0, ErrNotAllowed},
		{"pro", "a1", "a", 2, nil},
		{"pro", "b", "b", 1, nil},
		{"other", "c", "c", 1, nil},
		{"other", "b", "", 0, ErrNotAllowed},
		{"pro", "nope", "", 0, ErrUnknownModel},
	}
	for _, tt := range tests {
		rt, err := r.Resolve(tt.plan, tt.requested)
		if !errors.Is(err, tt.err) {
			t.Errorf("Resolve(%q, %q): %v, want %v", tt.plan, tt.requested, err, tt.err)
			continue
		}
		if err == nil && (rt.Model != tt.model || len(rt.chain) != tt.chain) {
			t.Errorf("Resolve(%q, %q) = %q with %d models, want %q with %d", tt.plan, tt.requested, rt.Model, len(rt.chain), tt.model, tt.chain)
		}
	}
	if _, err := newRouterErr(Config{Models: cfg.Models}, local); err != nil {
		t.Errorf("no plans: %v", err)
	}
}

func newRouterErr(cfg Config, f map[string]Factory) (*Router, error) {
	return New(cfg, Options{Factories: f})
}

func TestNewErrors(t *testing.T) {
	ok := ModelConfig{Name: "ok", Provider: KindOpenAIChat, BaseURL: "http://127.0.0.1:1/v1"}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no models", Config{}, "no models"},
		{"unknown provider", Config{Models: []ModelConfig{{Name: "x", Provider: "nope"}}}, "unknown provider"},
		{"local without factory", Config{Models: []ModelConfig{{Name: "x", Provider: KindLocal}}}, "unknown provider"},
		{"bad base_url", Config{Models: []ModelConfig{{Name: "x", Provider: KindAnthropic, BaseURL: "api.example.com"}}}, "base_url"},
		{"no name", Config{Models: []ModelConfig{{Provider: KindAnthropic, BaseURL: "http://x"}}}, "no name"},
		{"duplicate alias", Config{Models: []ModelConfig{ok, {Name: "y", Aliases: []string{"ok"}, Provider: KindOpenAIChat, BaseURL: ok.BaseURL}}}, "used twice"},
		{"unknown fallback", Config{Models: []ModelConfig{{Name: "x", Provider: KindOpenAIChat, BaseURL: ok.BaseURL, Fallback: []string{"z"}}}}, "unknown fallback"},
		{"unknown default", Config{Models: []ModelConfig{ok}, DefaultModel: "z"}, "default_model"},
		{"plan with unknown model", Config{Models: []ModelConfig{ok}, PlanModels: map[string][]string{"lite": {"z"}}}, "unknown model"},
		{"fim template without prefix", Config{Models: []ModelConfig{{Name: "x", Provider: KindOpenAICompletions, BaseURL: ok.BaseURL, FIMTemplate: "<fim>"}}}, "{prefix}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// chainConfig is a Config of models served by srv: first falls back to the others.
func chainConfig(srv *providertest.Server, models ...string) Config {
	var cfg Config
	for i, m := range models {
		mc := modelConfig(srv, KindOpenAIChat, m, nil)
		mc.Name = "model" + string(rune('0'+i))
		if i == 0 {
			for j := 1; j < len(models); j++ {
				mc.Fallback = append(mc.Fallback, "model"+string(rune('0'+j)))
			}
		}
		cfg.Models = append(cfg.Models, mc)
	}
	cfg.RetryBackoff = time.Millisecond
	return cfg
}

func TestFallback(t *testing.T) {
	tests := []struct {
		name     string
		models   []string // the first falls back to the others; names pick the fake's behaviour
		attempts int
		requests []string // models the fake saw, in order
		err      error
		output   string
	}{
		{"unavailable falls back", []string{"error-503", "m"}, 3, []string{"error-503", "m"}, nil, "return a + b\n"},
		{"failed falls back", []string{"error-400", "m"}, 3, []string{"error-400", "m"}, nil, "return a + b\n"},
		{"timeout before first token falls back", []string{"hang", "m"}, 3, []string{"hang", "m"}, nil, "return a + b\n"},
		{"never after the first token", []string{"cut", "m"}, 3, []string{"cut"}, ErrFailed, "return a"},
		{"unavailable retried", []string{"error-429"}, 3, []string{"error-429", "error-429", "error-429"}, ErrUnavailable, ""},
		{"failed not retried", []string{"error-500"}, 3, []string{"error-500"}, ErrFailed, ""},
		{"all unavailable, start over", []string{"error-503", "error-502"}, 3, []string{"error-503", "error-502", "error-503"}, ErrUnavailable, ""},
		{"attempts bound fallbacks", []string{"error-503", "error-502", "m"}, 2, []string{"error-503", "error-502"}, ErrUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			cfg := chainConfig(srv, tt.models...)
			cfg.MaxAttempts = tt.attempts
			cfg.Models[0].Timeouts.FirstToken = 200 * time.Millisecond
			rt, err := newRouter(t, cfg, nil).Resolve("pro", "")
			if err != nil {
				t.Fatal(err)
			}
			c := &collector{}
			_, err = rt.Stream(context.Background(), completion(), c.sink)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
			var got []string
			for _, e := range srv.Events() {
				if e.Kind == providertest.EventStart {
					got = append(got, e.Model)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.requests, ",") {
				t.Errorf("requests %q, want %q", got, tt.requests)
			}
			if c.text() != tt.output {
				t.Errorf("output %q, want %q", c.text(), tt.output)
			}
		})
	}
}

// TestBackoffHonoursContext: a stream waiting to retry ends when its context does.
func TestBackoffHonoursContext(t *testing.T) {
	srv := newServer(t)
	cfg := chainConfig(srv, "error-503")
	cfg.RetryBackoff = time.Hour
	rt, err := newRouter(t, cfg, nil).Resolve("", "")
	if err != nil {
		t.Fatal(err)
	}
	// The 503 comes back at once; the deadline passes while the stream waits to retry.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := rt.Stream(ctx, completion(), (&collector{}).sink)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting to retry") {
			t.Errorf("got %v, want a deadline while waiting to retry", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end while waiting to retry")
	}
	if n := starts(srv); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestLocalFactoryHook builds a kind through Options.Factories and streams through it.
func TestLocalFactoryHook(t *testing.T) {
	var gotModel string
	factories := map[string]Factory{KindLocal: func(m ModelConfig, env Env) (Provider, error) {
		return fakeProvider{stream: func(_ context.Context, req *Request, sink Sink) (Result, error) {
			gotModel = req.Model
			return Result{FinishReason: wire.FinishStop}, sink(0, []byte("ok"))
		}}, nil
	}}
	r := newRouter(t, Config{Models: []ModelConfig{{Name: "ngram", Provider: KindLocal, Model: "ngram-v1"}}}, factories)
	rt, err := r.Resolve("lite", "")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	if _, err := rt.Stream(context.Background(), completion(), c.sink); err != nil || c.text() != "ok" || gotModel != "ngram-v1" {
		t.Errorf("got %q, %v, model %q", c.text(), err, gotModel)
	}
}
