// Package complete is the completion engine: it turns a cursor in a document into a suggestion.
//
// For each request it checks the ignore list, supersedes the document's older request, answers
// from the typed-ahead state or the cache when it can, debounces, builds the context (prefix and
// suffix within budgets, snippets of other open documents, secrets masked), streams the model's
// answer (stopping it as soon as the suggestion is known to be complete; a multi-line one is
// answered once its first lines are, and the rest streams on into the cache: rest.go), and
// post-processes it to fit the text around the cursor.
//
// Content stays in memory: the cache and the typed-ahead state hold suggestions for minutes,
// keyed by hashes, and nothing here logs text.
package complete

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/codingplan/codingplan/lsp/internal/config"
	wire "github.com/codingplan/codingplan/shared"
)

// Errors at the package's edge.
var (
	// ErrIgnored: the document matches the ignore list; nothing of it is sent.
	ErrIgnored = errors.New("complete: the file is on the ignore list")
	// ErrSuperseded: a newer request for the same document replaced this one. It wraps
	// context.Canceled.
	ErrSuperseded = fmt.Errorf("complete: superseded by a newer request: %w", context.Canceled)
)

// Streamer sends one request and relays the answer (remote.Client implements it). onDelta is
// called sequentially, in order, on the caller's goroutine; cancelling ctx ends the stream.
type Streamer interface {
	Stream(ctx context.Context, req wire.ClientFrame, onDelta func(text []byte)) (wire.ServerFrame, error)
}

// Trigger says why a completion was asked for.
type Trigger int

const (
	// Automatic: the user typed (LSP InlineCompletionTriggerKind 2).
	Automatic Trigger = iota
	// Invoked: the user asked explicitly (kind 1); no debounce.
	Invoked
)

// Selected is the item highlighted in the editor's completion popup: Start and End are the
// byte offsets it replaces, Text is what it inserts. The suggestion must extend it.
type Selected struct {
	Start, End int
	Text       string
}

// Other is another open document, a source of snippets. Most recently edited first.
type Other struct {
	RelPath, Language, Text string
}

// Input is one completion request.
type Input struct {
	DocKey   string // identifies the document (its URI)
	Text     string // the whole document
	Offset   int    // the cursor, a byte offset into Text
	Language string // LSP language id
	RelPath  string // path relative to the workspace root, slash-separated
	Version  int32
	Trigger  Trigger
	Selected *Selected
	Others   []Other
	Settings config.Settings
	// ClientDebounces says the editor debounces itself (VS Code, Neovim).
	ClientDebounces bool
}

// Item is one suggestion: InsertText replaces the bytes [Start, End) of the document.
type Item struct {
	InsertText string
	Start, End int
	ID         string
}

// Result is the engine's answer. No items means nothing worth showing.
type Result struct {
	Items     []Item
	FromCache bool // answered from the cache or typed-ahead state, without a request
}

// Config configures an Engine; zero values take the defaults in the comments.
type Config struct {
	CacheEntries int           // 100
	CacheTTL     time.Duration // 5m
	AutoDebounce time.Duration // debounce when DebounceMS is -1 and the client does not debounce; 75ms
	MaxOthers    int           // other open documents searched for snippets; 8
	// BlockWait is how long a multi-line request waits, once a line is complete, for the rest
	// of the block before answering with the lines it has (see rest.go); 30ms, negative: none.
	BlockWait time.Duration
	RestTime  time.Duration // how long the rest of a block may stream after the answer; 10s
	RestBytes int           // bytes of a multi-line suggestion kept; 16 KiB
	Now       func() time.Time
}

// Stats are counters, numbers only.
type Stats struct {
	Requests          int64 // Complete calls
	Sent              int64 // requests sent to the backend
	CacheHits         int64
	TypedAhead        int64 // answered from the last suggestion the user is typing
	Superseded        int64
	EarlyStops        int64 // streams stopped once the suggestion was complete
	Continued         int64 // multi-line answers given before their stream ended (see rest.go)
	Empty             int64 // answers post-processing dropped
	Errors            int64
	Ignored           int64
	Shown             int64
	Accepted          int64
	PartiallyAccepted int64
}

// Engine answers completion requests. Its methods are safe for concurrent use.
type Engine struct {
	cfg   Config
	s     Streamer
	log   *slog.Logger
	cache *cache

	mu       sync.Mutex
	inflight map[string]*flight
	ahead    map[string]ahead
	rests    map[string]*rest // the stream of a document's block running on after its answer

	wg    sync.WaitGroup // the streams of multi-line requests (see rest.go)
	ids   atomic.Uint64
	stats struct {
		requests, sent, cacheHits, typedAhead, superseded, earlyStops, continued, empty, errors,
		ignored, shown, accepted, partial atomic.Int64
	}
}

type flight struct {
	cancel context.CancelCauseFunc
}

// New returns an engine that sends requests through s.
func New(cfg Config, s Streamer, log *slog.Logger) *Engine {
	if cfg.CacheEntries <= 0 {
		cfg.CacheEntries = 100
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 5 * time.Minute
	}
	if cfg.AutoDebounce <= 0 {
		cfg.AutoDebounce = 75 * time.Millisecond
	}
	if cfg.MaxOthers <= 0 {
		cfg.MaxOthers = 8
	}
	if cfg.BlockWait == 0 {
		cfg.BlockWait = 30 * time.Millisecond
	}
	if cfg.RestTime <= 0 {
		cfg.RestTime = 10 * time.Second
	}
	if cfg.RestBytes <= 0 {
		cfg.RestBytes = 16 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		cfg:      cfg,
		s:        s,
		log:      log,
		cache:    newCache(cfg.CacheEntries, cfg.CacheTTL),
		inflight: map[string]*flight{},
		ahead:    map[string]ahead{},
		rests:    map[string]*rest{},
	}
}

// Complete answers one request. It returns ErrIgnored for ignored files, ErrSuperseded when
// a newer request for the document replaced it, ctx's error (wrapped) when ctx ends, and the
// Streamer's errors (wrapped: *wire.Error, remote.ErrDisconnected, ...) as they come.
func (e *Engine) Complete(ctx context.Context, in Input) (Result, error) {
	e.stats.requests.Add(1)
	if in.Offset < 0 || in.Offset > len(in.Text) {
		return Result{}, fmt.Errorf("complete: offset %d outside the document (%d bytes)", in.Offset, len(in.Text))
	}
	if Ignored(in.Settings.Ignore, in.RelPath) {
		e.stats.ignored.Add(1)
		return Result{}, ErrIgnored
	}
	now := e.cfg.Now()
	if r, ok := e.typedAhead(in, now); ok {
		e.supersede(in.DocKey, nil)
		e.stats.typedAhead.Add(1)
		return r, nil
	}
	if done := e.restFor(in); done != nil {
		if r, ok, err := e.awaitRest(ctx, in, done); ok || err != nil {
			return r, err
		}
	}

	v := newView(in)
	sit := situate(v.prefix, v.suffix, in.Settings.Multiline)
	key := e.key(in, v, sit)
	if n := suggestions(in); n > 1 {
		if each, ok := e.s.(eachStreamer); ok {
			return e.completeEach(ctx, in, v, sit, key, n, each)
		}
	}
	if raw, ok := e.cache.get(key, now); ok {
		e.supersede(in.DocKey, nil)
		e.stats.cacheHits.Add(1)
		return e.answer(in, v, sit, raw, true, now), nil
	}

	// Only a request that goes to the backend needs a context of its own: one answered here
	// just ends the document's running request, without the allocations of a new context.
	// The one context serves both ends: a newer request's (ErrSuperseded) and the early stop
	// of a complete suggestion (errEnough).
	ctx, cancel := context.WithCancelCause(ctx)
	me := &flight{cancel: cancel}
	e.supersede(in.DocKey, me)
	defer e.finish(in.DocKey, me)

	if err := e.debounce(ctx, in); err != nil {
		return Result{}, e.ended(ctx, err)
	}
	// A block still streaming after its answer holds a concurrency slot this request is about
	// to ask for, and the user has left it (rest.go).
	e.dropRests()
	req := e.request(in, v, sit)
	if sit.multiline {
		return e.completeBlock(ctx, in, v, sit, key, req)
	}
	raw, err := e.stream(ctx, cancel, req, sit)
	if err != nil {
		return Result{}, e.ended(ctx, err)
	}
	e.putIfSameModel(key, in, v, sit, raw)
	return e.answer(in, v, sit, raw, false, e.cfg.Now()), nil
}

// defaultModeler names the model a request without one gets (remote.Client implements it,
// from the backend's hello).
type defaultModeler interface{ DefaultModel() string }

// model names the model that answers in: the one its settings name, else the backend's default
// as the backend last named it. It keys the cache and the typed-ahead state, so that what one
// model suggested is never shown for another, also when the backend's default changes.
func (e *Engine) model(in Input) string {
	if in.Settings.Model != "" {
		return in.Settings.Model
	}
	if d, ok := e.s.(defaultModeler); ok {
		return "\x00default:" + d.DefaultModel() // never a name a user sets
	}
	return ""
}

// key is the cache key of in.
func (e *Engine) key(in Input, v view, sit situation) uint64 {
	return e.cache.key(v.prefix, v.suffix, in.Language, e.model(in), sit.multiline)
}

// putIfSameModel caches raw under key, unless the backend's default model changed while it was
// being made (key was made for the model before).
func (e *Engine) putIfSameModel(key uint64, in Input, v view, sit situation, raw string) {
	if e.key(in, v, sit) == key {
		e.cache.put(key, in.DocKey, raw, e.cfg.Now())
	}
}

// answer post-processes a raw suggestion into the result and remembers it for typed-ahead.
func (e *Engine) answer(in Input, v view, sit situation, raw string, cached bool, now time.Time) Result {
	return e.answerText(in, v, postprocess(raw, sit), cached, now)
}

// answerText makes the result of a post-processed suggestion and remembers it for typed-ahead.
func (e *Engine) answerText(in Input, v view, text string, cached bool, now time.Time) Result {
	if text == "" {
		e.stats.empty.Add(1)
		return Result{FromCache: cached}
	}
	if !validSelection(in.Selected, in) {
		e.remember(in, text, now)
	}
	return Result{FromCache: cached, Items: []Item{{InsertText: v.lead + text, Start: v.start, End: v.end, ID: e.newID()}}}
}

func (e *Engine) newID() string {
	var b [2 + 13]byte // "cp" and a uint64 in base 36
	return string(strconv.AppendUint(append(b[:0], "cp"...), e.ids.Add(1), 36))
}

// supersede cancels the document's running request and registers me (nil: none) as the
// document's request.
func (e *Engine) supersede(doc string, me *flight) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if old := e.inflight[doc]; old != nil {
		old.cancel(ErrSuperseded)
		delete(e.inflight, doc)
	}
	if me != nil {
		e.inflight[doc] = me
	}
}

// finish ends me, the document's request registered by supersede.
func (e *Engine) finish(doc string, me *flight) {
	e.mu.Lock()
	if e.inflight[doc] == me {
		delete(e.inflight, doc)
	}
	e.mu.Unlock()
	me.cancel(nil)
}

// ended maps the error of a request that did not finish.
func (e *Engine) ended(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), ErrSuperseded) {
			e.stats.superseded.Add(1)
			return ErrSuperseded
		}
		return fmt.Errorf("complete: %w", ctx.Err())
	}
	e.stats.errors.Add(1)
	return fmt.Errorf("complete: %w", err)
}

// debounce waits before a request the user may be about to replace by typing on.
func (e *Engine) debounce(ctx context.Context, in Input) error {
	if in.Trigger == Invoked {
		return ctx.Err()
	}
	d := time.Duration(in.Settings.DebounceMS) * time.Millisecond
	if in.Settings.DebounceMS < 0 {
		d = e.cfg.AutoDebounce
		if in.ClientDebounces {
			d = 0
		}
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errEnough stops a stream whose suggestion is complete.
var errEnough = errors.New("complete: the suggestion is complete")

// stream sends req and collects the answer, stopping the stream as soon as post-processing
// would cut everything that follows: with stop, which ends ctx (the request's own context, not
// shared with anything that must outlive the answer) with errEnough as the cause.
func (e *Engine) stream(ctx context.Context, stop context.CancelCauseFunc, req wire.ClientFrame, sit situation) (string, error) {
	e.stats.sent.Add(1)
	var buf []byte
	enough := false
	_, err := e.s.Stream(ctx, req, func(text []byte) {
		if enough {
			return
		}
		buf = append(buf, text...)
		if hasNewline(text) && sit.complete(buf) {
			enough = true
			stop(errEnough)
		}
	})
	if err != nil {
		if enough && errors.Is(context.Cause(ctx), errEnough) {
			e.stats.earlyStops.Add(1)
			return string(buf), nil
		}
		return "", err
	}
	return string(buf), nil
}

func hasNewline(b []byte) bool {
	for _, c := range b {
		if c == '\n' {
			return true
		}
	}
	return false
}

// Shown counts a suggestion the editor displayed.
func (e *Engine) Shown(id string) {
	if id != "" {
		e.stats.shown.Add(1)
	}
}

// Accepted counts an accepted suggestion.
func (e *Engine) Accepted(id string) {
	if id != "" {
		e.stats.accepted.Add(1)
	}
}

// PartiallyAccepted counts a suggestion accepted in part (a word, a line).
func (e *Engine) PartiallyAccepted(id string) {
	if id != "" {
		e.stats.partial.Add(1)
	}
}

// Forget drops what the engine keeps for a document (call it on didClose), and ends the stream
// of its block still running after the answer.
func (e *Engine) Forget(docKey string) {
	e.dropRest(docKey)
	e.mu.Lock()
	delete(e.ahead, docKey)
	e.mu.Unlock()
	e.cache.forget(docKey)
}

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	s := &e.stats
	return Stats{
		Requests: s.requests.Load(), Sent: s.sent.Load(), CacheHits: s.cacheHits.Load(),
		TypedAhead: s.typedAhead.Load(), Superseded: s.superseded.Load(), EarlyStops: s.earlyStops.Load(),
		Continued: s.continued.Load(), Empty: s.empty.Load(), Errors: s.errors.Load(), Ignored: s.ignored.Load(),
		Shown: s.shown.Load(), Accepted: s.accepted.Load(), PartiallyAccepted: s.partial.Load(),
	}
}
