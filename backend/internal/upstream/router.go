package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	wire "github.com/codingplan/codingplan/shared"
)

// Errors of Router.Resolve.
var (
	// ErrUnknownModel: no model has the requested name or alias (bad_request).
	ErrUnknownModel = errors.New("unknown model")
	// ErrNotAllowed: the caller's plan may not use the model (quota_exceeded).
	ErrNotAllowed = errors.New("model not allowed for this plan")
)

// Factory builds the Provider of one model. env holds what the router shares between
// providers.
type Factory func(m ModelConfig, env Env) (Provider, error)

// Env is what a Factory gets besides the model's own configuration.
type Env struct {
	// Transport returns the shared, tuned transport for an origin and connect timeout.
	Transport func(baseURL string, connect time.Duration) (*http.Transport, error)
	// Getenv reads an environment variable (the API key named by api_key_env).
	Getenv func(string) string
	Log    *slog.Logger
}

// Options are the router's dependencies.
type Options struct {
	// Factories adds or replaces provider kinds, by ModelConfig.Provider. The HTTP kinds are
	// built in; "local" comes from here (LocalFactory).
	Factories map[string]Factory
	// Getenv reads API keys; nil means os.Getenv.
	Getenv func(string) string
	Log    *slog.Logger
}

// builtinFactories are the provider kinds every router knows.
var builtinFactories = map[string]Factory{
	KindOpenAIChat:        NewOpenAIChat,
	KindOpenAICompletions: NewOpenAICompletions,
	KindAnthropic:         NewAnthropic,
}

// NewOpenAIChat builds an openai-chat provider.
func NewOpenAIChat(m ModelConfig, env Env) (Provider, error) {
	return newHTTP(KindOpenAIChat, true, "/chat/completions", m, env, openAIHeader, func() codec { return &openAIChat{} })
}

// NewOpenAICompletions builds an openai-completions provider.
func NewOpenAICompletions(m ModelConfig, env Env) (Provider, error) {
	return newHTTP(KindOpenAICompletions, true, "/completions", m, env, openAIHeader, func() codec { return &openAICompletions{} })
}

// NewAnthropic builds an anthropic provider.
func NewAnthropic(m ModelConfig, env Env) (Provider, error) {
	return newHTTP(KindAnthropic, false, "/v1/messages", m, env, anthropicHeader, func() codec { return &anthropic{} })
}

func newHTTP(kind string, several bool, path string, m ModelConfig, env Env, header func(http.Header, wire.Secret), newCodec func() codec) (Provider, error) {
	m = m.withDefaults()
	env = env.withDefaults()
	t, err := env.Transport(m.BaseURL, m.Timeouts.Connect)
	if err != nil {
		return nil, err
	}
	var key wire.Secret
	if m.APIKeyEnv != "" {
		key = wire.Secret(env.Getenv(m.APIKeyEnv))
		if key == "" {
			env.Log.Warn("api key variable is empty", "model", m.Name, "api_key_env", m.APIKeyEnv)
		}
	}
	return &httpProvider{
		kind: kind, several: several, model: m, url: m.BaseURL + path, key: key, header: header, newCodec: newCodec,
		client: &http.Client{Transport: t},
	}, nil
}

func (e Env) withDefaults() Env {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Log == nil {
		e.Log = slog.New(slog.DiscardHandler)
	}
	if e.Transport == nil {
		pool := newTransports(0)
		e.Transport = pool.get
	}
	return e
}

// Router resolves a model name and a plan to a Route. It is safe for concurrent use.
type Router struct {
	models      map[string]*model // by name and alias
	list        []*model          // in configuration order
	defaultName string
	plans       map[string]map[string]bool // plan -> allowed model names; nil set: all
	maxAttempts int
	backoff     time.Duration
	transports  *transports
	log         *slog.Logger
}

// model is a configured model and its provider.
type model struct {
	cfg      ModelConfig
	provider Provider
	fallback []*model
}

// New builds a Router from cfg, building every model's provider.
func New(cfg Config, opts Options) (*Router, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	r := &Router{
		models: map[string]*model{}, maxAttempts: cfg.MaxAttempts, backoff: cfg.RetryBackoff,
		transports: newTransports(cfg.BatchWindow), log: opts.Log,
	}
	if r.maxAttempts <= 0 {
		r.maxAttempts = DefaultMaxAttempts
	}
	if r.backoff <= 0 {
		r.backoff = DefaultRetryBackoff
	}
	if len(cfg.Models) == 0 {
		return nil, errors.New("no models configured")
	}
	env := Env{Transport: r.transports.get, Getenv: opts.Getenv, Log: opts.Log}.withDefaults()
	var errs []error
	var list []*model
	for _, mc := range cfg.Models {
		if err := mc.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		f := opts.Factories[mc.Provider]
		if f == nil {
			f = builtinFactories[mc.Provider]
		}
		if f == nil {
			errs = append(errs, fmt.Errorf("model %q: unknown provider %q", mc.Name, mc.Provider))
			continue
		}
		p, err := f(mc, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("model %q: %w", mc.Name, err))
			continue
		}
		m := &model{cfg: mc.withDefaults(), provider: p}
		for _, name := range append([]string{mc.Name}, mc.Aliases...) {
			if _, dup := r.models[name]; dup {
				errs = append(errs, fmt.Errorf("model name or alias %q is used twice", name))
			}
			r.models[name] = m
		}
		list = append(list, m)
	}
	for _, m := range list {
		for _, name := range m.cfg.Fallback {
			fb := r.models[name]
			if fb == nil {
				errs = append(errs, fmt.Errorf("model %q: unknown fallback %q", m.cfg.Name, name))
				continue
			}
			if fb != m && !slices.Contains(m.fallback, fb) {
				m.fallback = append(m.fallback, fb)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	r.list = list
	r.defaultName = cfg.Models[0].Name
	if cfg.DefaultModel != "" {
		m := r.models[cfg.DefaultModel]
		if m == nil {
			return nil, fmt.Errorf("models: default_model %q is not a configured model", cfg.DefaultModel)
		}
		r.defaultName = m.cfg.Name
	}
	r.plans = map[string]map[string]bool{}
	for plan, names := range cfg.PlanModels {
		set := map[string]bool{}
		for _, name := range names {
			if name == "*" {
				set = nil
				break
			}
			m := r.models[name]
			if m == nil {
				return nil, fmt.Errorf("models: plan %q allows unknown model %q", plan, name)
			}
			set[m.cfg.Name] = true
		}
		r.plans[plan] = set
	}
	return r, nil
}

// Close closes idle upstream connections.
func (r *Router) Close() { r.transports.closeIdle() }

// DefaultModel is the name of the model a request without one gets.
func (r *Router) DefaultModel() string { return r.defaultName }

// allowed reports whether plan may use the model named name.
func (r *Router) allowed(plan, name string) bool {
	set, ok := r.plans[plan]
	if !ok {
		set, ok = r.plans["*"]
	}
	return !ok || set == nil || set[name]
}

// Resolve finds the model a plan's request names ("" for the default). The error wraps
// ErrUnknownModel or ErrNotAllowed.
func (r *Router) Resolve(plan, requested string) (*Route, error) {
	name := requested
	if name == "" {
		name = r.defaultName
	}
	m := r.models[name]
	if m == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownModel, wire.Clip(name, clipName))
	}
	if !r.allowed(plan, m.cfg.Name) {
		return nil, fmt.Errorf("%w: %q", ErrNotAllowed, m.cfg.Name)
	}
	chain := []*model{m}
	for _, fb := range m.fallback {
		if r.allowed(plan, fb.cfg.Name) {
			chain = append(chain, fb)
		}
	}
	return &Route{Model: m.cfg.Name, chain: chain, router: r}, nil
}

// clipName is how much of a client-chosen model name an error message quotes (see wire.Clip).
const clipName = 64

// Route is a resolved model with its fallbacks, for one request. It implements Provider.
type Route struct {
	// Model is the configured name of the requested model (aliases resolved).
	Model  string
	chain  []*model
	router *Router
}

// Stream calls the model, retrying it when it is unavailable and falling back to the next
// model of its fallback list when it fails, but only until the first output reached sink:
// after that an error ends the stream. At most Config.MaxAttempts calls are made; retries of
// the same model wait a growing backoff, which ctx cuts short.
func (rt *Route) Stream(ctx context.Context, req *Request, sink Sink) (Result, error) {
	reached := false
	guarded := func(index int, text []byte) error {
		if len(text) == 0 {
			return sink(index, nil) // a flush
		}
		reached = true
		return sink(index, text)
	}
	chain := rt.serving(req.Op)
	if len(chain) == 0 {
		return Result{}, fmt.Errorf("model %q serves no %q requests: %w: %w", rt.Model, req.Op, ErrUnsupported, ErrFailed)
	}
	var lastErr error
	next, round, wait := 0, 0, false // next: index in chain of the model to call
	for attempt := 0; attempt < rt.router.maxAttempts; attempt++ {
		if wait {
			if err := sleep(ctx, backoff(rt.router.backoff, round)); err != nil {
				return Result{}, fmt.Errorf("waiting to retry: %w", err)
			}
			wait = false
		}
		m := chain[next]
		r := *req
		r.Model = m.cfg.Model
		res, err := m.provider.Stream(ctx, &r, guarded)
		if err == nil {
			return res, nil
		}
		lastErr = fmt.Errorf("model %q: %w", m.cfg.Name, err)
		if reached || ctx.Err() != nil {
			return Result{}, lastErr
		}
		unavailable := errors.Is(err, ErrUnavailable)
		if !unavailable && !errors.Is(err, ErrFailed) {
			return Result{}, lastErr // the sink's error, or a provider's own
		}
		rt.router.log.Debug("upstream attempt failed", "model", m.cfg.Name, "attempt", attempt+1, "err", err)
		switch {
		case next+1 < len(chain):
			next++ // fall back without waiting
		case unavailable:
			next, round, wait = 0, round+1, true // every model was tried: wait, then start over
		default:
			return Result{}, lastErr // failed, and nothing left to fall back to
		}
	}
	return Result{}, lastErr
}

// serving is the route's chain without the models that do not serve op; empty when the
// requested model itself does not.
func (rt *Route) serving(op string) []*model {
	if !slices.Contains(rt.chain[0].cfg.Ops, op) {
		return nil
	}
	out := make([]*model, 0, len(rt.chain))
	for _, m := range rt.chain {
		if slices.Contains(m.cfg.Ops, op) {
			out = append(out, m)
		}
	}
	return out
}

// backoff is the wait before the n-th retry (n >= 1): base doubling, with up to 50% jitter.
func backoff(base time.Duration, n int) time.Duration {
	d := base << min(n-1, 6)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// transports holds one tuned *http.Transport per upstream origin and connect timeout, so
// that models served by the same API share a pool of warm connections.
type transports struct {
	window time.Duration // Config.BatchWindow
	mu     sync.Mutex
	m      map[transportKey]*http.Transport
}

type transportKey struct {
	origin  string
	connect time.Duration
}

// newTransports makes a pool whose transports pace reads by window (Config.BatchWindow:
// zero means the default, negative no pacing).
func newTransports(window time.Duration) *transports {
	if window == 0 {
		window = DefaultBatchWindow
	}
	return &transports{window: window, m: map[transportKey]*http.Transport{}}
}

func (ts *transports) get(baseURL string, connect time.Duration) (*http.Transport, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("base_url is not a URL")
	}
	k := transportKey{u.Scheme + "://" + u.Host, connect}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t := ts.m[k]; t != nil {
		return t, nil
	}
	t := NewTransport(connect, ts.window)
	ts.m[k] = t
	return t, nil
}

func (ts *transports) closeIdle() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, t := range ts.m {
		t.CloseIdleConnections()
	}
}

// NewTransport returns a transport tuned for streaming to one model API: a deep idle pool
// (the default keeps 2 connections per host, so bursts of streams open and close sockets),
// connect and TLS handshake bounded by connect, no gzip (a compressed event stream arrives in
// bursts), and connections that read a fast stream in batches, one per window (see pacedConn;
// window <= 0: as data arrives) and clear what the HTTP client buffered of each exchange (see
// wipeConn), over TLS too (see dialTLS), which keeps them to HTTP/1.1. Through a proxy, net/http
// adds TLS itself, and HTTP/2 is used when the server offers it.
func NewTransport(connect, window time.Duration) *http.Transport {
	if connect <= 0 {
		connect = DefaultTimeouts.Connect
	}
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if window > 0 {
			c = newPacedConn(c, window)
		}
		return &wipeConn{Conn: c}, nil
	}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   connect,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ReadBufferSize:        32 << 10, // a batch of events in one read; the default is 4 KiB
	}
	t.DialTLSContext = dialTLS(t, dial, connect)
	return t
}
