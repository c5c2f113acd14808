package complete

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/codingplan/codingplan/lsp/internal/erase"
	wire "github.com/codingplan/codingplan/shared"
)

// A multi-line suggestion is answered before its stream ends (issue 13). A block takes a
// streaming model as long as the block is (20 tokens over half a second), while its first line
// is there after a few tokens; single-line requests already end at their first line break.
//
// The request waits until a line of the suggestion is complete, then up to BlockWait longer
// for the rest of the block, so that a block that arrives at once (a fast model, a near
// provider, the cache of one) still shows whole, and answers with the complete lines it has.
// The stream goes on, on a goroutine of the engine's, into the cache and the typed-ahead
// state: once the user accepts the lines shown, the next request is a typed-ahead answer
// with the next lines. A request that arrives just past the lines shown before the rest has
// come waits for it rather than sending a new request for what is already on its way.
//
// The rest is bounded: RestTime after the answer and RestBytes of text, after which the
// complete lines it has are kept. It keeps its concurrency slot at the backend until it ends,
// so it is cancelled as soon as any request goes to the backend, for whichever document: the
// user has left the suggestion, and on a plan with one concurrent stream the new request would
// wait in the backend's queue behind the rest (a second document's request too: the engine does
// not know the plan's limit, and the next suggestion matters more than the rest of one the user
// walked away from). It is also cancelled on didClose (Forget) and by Close. A request answered
// from the cache or typed-ahead sends nothing and leaves it running. Its text lives in the
// stream's buffer, then in the cache and the typed-ahead state, like any suggestion's.

// Causes that end a stream running on after its answer.
var (
	errDropped  = errors.New("complete: the rest of the suggestion is no longer wanted")
	errRestTime = errors.New("complete: the rest of the suggestion took too long")
	errTooLong  = errors.New("complete: the suggestion is too long")
)

// block is one multi-line stream: the text so far and how far it got.
type block struct {
	sit   situation
	limit int           // bytes kept at most
	ready chan struct{} // closed once a line of the suggestion is complete
	done  chan struct{} // closed once the stream has ended

	mu     sync.Mutex
	buf    []byte
	first  bool  // ready is closed
	enough bool  // the stream was stopped: the block is complete, or too long
	ended  bool  // the stream has ended, with err
	err    error //
	rest   *rest // who keeps the text that comes after the answer; nil before it
}

// rest is what keeps the text of a block that comes after its answer.
type rest struct {
	stop     context.CancelCauseFunc // ends the stream
	timer    *time.Timer             // RestTime
	done     <-chan struct{}         // the block's
	doc      string
	key      uint64
	sit      situation
	shown    ahead // the typed-ahead entry of the answer, when remember
	remember bool  // the answer was remembered for typed-ahead (no selected item)
}

func newBlock(sit situation, limit int) *block {
	return &block{sit: sit, limit: limit, ready: make(chan struct{}), done: make(chan struct{})}
}

// add appends a delta, stopping the stream (stop) once the block is complete or too long.
func (b *block) add(text []byte, stop context.CancelCauseFunc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.enough {
		return
	}
	b.buf = append(b.buf, text...)
	if len(b.buf) > b.limit {
		b.buf = b.buf[:bytes.LastIndexByte(b.buf, '\n')+1]
		b.enough = true
		stop(errTooLong)
		b.markFirst()
		return
	}
	if !hasNewline(text) {
		return
	}
	if b.sit.complete(b.buf) {
		b.enough = true
		stop(errEnough)
		return
	}
	b.markFirst()
}

// markFirst closes ready once the complete lines hold something to show.
func (b *block) markFirst() {
	if b.first {
		return
	}
	if postprocess(string(b.buf[:bytes.LastIndexByte(b.buf, '\n')+1]), b.sit) != "" {
		b.first = true
		close(b.ready)
	}
}

// text returns what the block holds for post-processing: all of it once it is complete or
// ended cleanly, else its complete lines.
func (b *block) text() string {
	if b.enough || (b.ended && b.err == nil) {
		return string(b.buf)
	}
	return string(b.buf[:bytes.LastIndexByte(b.buf, '\n')+1])
}

// wait returns once the block is ready to answer: a line complete and then grace passed, or
// the block complete, or the stream ended. It returns ctx's error when ctx ends first.
func (b *block) wait(ctx context.Context, grace time.Duration) error {
	select {
	case <-b.ready:
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	if grace <= 0 {
		return nil
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-b.done:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// completeBlock answers a multi-line request with the complete lines its stream has once b.wait
// returns, and leaves the rest of the stream to the engine (see the top of this file).
func (e *Engine) completeBlock(ctx context.Context, in Input, v view, sit situation, key uint64, req wire.ClientFrame) (Result, error) {
	b := newBlock(sit, e.cfg.RestBytes)
	// The stream outlives the request once it has answered: ctx stops it only until then.
	sctx, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	detach := context.AfterFunc(ctx, func() { stop(context.Cause(ctx)) })
	e.stats.sent.Add(1)
	e.wg.Go(func() { erase.Do(func() { e.receive(sctx, stop, req, b) }) })

	if err := b.wait(ctx, e.cfg.BlockWait); err != nil || !detach() {
		return Result{}, e.ended(ctx, ctx.Err())
	}
	now := e.cfg.Now()
	b.mu.Lock()
	if b.ended && b.err != nil && !b.enough && !b.first {
		err := b.err
		b.mu.Unlock()
		stop(nil)
		return Result{}, e.ended(ctx, err)
	}
	raw := b.text()
	text := postprocess(raw, sit)
	if !b.ended && !b.enough {
		r := &rest{stop: stop, done: b.done, doc: in.DocKey, key: key, sit: sit, remember: !validSelection(in.Selected, in)}
		if r.remember {
			r.shown = e.aheadAt(in, text, now)
		}
		r.timer = time.AfterFunc(e.cfg.RestTime, func() { stop(errRestTime) })
		b.rest = r
		e.keepRest(r)
		e.stats.continued.Add(1)
	}
	// Still holding b.mu: the rest's settle, which waits for it, comes after this answer in
	// the cache and the typed-ahead state.
	defer b.mu.Unlock()
	e.cache.put(key, in.DocKey, raw, now)
	return e.answerText(in, v, text, false, now), nil
}

// receive streams req into b until the stream ends, then hands what came after the answer to
// settle.
func (e *Engine) receive(ctx context.Context, stop context.CancelCauseFunc, req wire.ClientFrame, b *block) {
	defer stop(nil)
	_, err := e.s.Stream(ctx, req, func(text []byte) { b.add(text, stop) })
	b.mu.Lock()
	b.ended, b.err = true, err
	if b.enough && errors.Is(context.Cause(ctx), errEnough) {
		e.stats.earlyStops.Add(1)
	}
	r, raw := b.rest, ""
	if r != nil {
		r.timer.Stop()
		raw = b.text()
	}
	b.mu.Unlock()
	close(b.done)
	if r != nil {
		e.settle(r, raw)
	}
}

// keepRest registers r as its document's running rest, dropping an older one.
func (e *Engine) keepRest(r *rest) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if old := e.rests[r.doc]; old != nil {
		old.stop(errDropped)
	}
	e.rests[r.doc] = r
}

// dropRest cancels the document's running rest, if any.
func (e *Engine) dropRest(doc string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.rests[doc]; r != nil {
		delete(e.rests, doc)
		r.stop(errDropped)
	}
}

// dropRests cancels every running rest: a request is about to take a concurrency slot.
func (e *Engine) dropRests() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for doc, r := range e.rests {
		delete(e.rests, doc)
		r.stop(errDropped)
	}
}

// settle keeps the whole block of an ended rest: in the cache, and as the typed-ahead
// suggestion if the document's is still the answer's. A dropped rest keeps nothing.
func (e *Engine) settle(r *rest, raw string) {
	text := ""
	if r.remember {
		text = postprocess(raw, r.sit)
	}
	now := e.cfg.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rests[r.doc] != r {
		return // dropped: a newer request went to the backend, the document closed, Close
	}
	delete(e.rests, r.doc)
	e.cache.put(r.key, r.doc, raw, now)
	if a, ok := e.ahead[r.doc]; ok && text != "" && a.same(r.shown) {
		a.text, a.at = text, now
		e.ahead[r.doc] = a
	}
}

// restFor returns the end of the document's running rest when in's cursor is just past all
// of the suggestion it answered with: typed-ahead has nothing left to show, the rest will.
func (e *Engine) restFor(in Input) <-chan struct{} {
	if in.Selected != nil {
		return nil
	}
	e.mu.Lock()
	r := e.rests[in.DocKey]
	a, ok := e.ahead[in.DocKey]
	e.mu.Unlock()
	if r == nil || !ok || !r.remember || !a.same(r.shown) || a.model != e.model(in) {
		return nil
	}
	if typed, ok := e.typedOf(in, a); !ok || typed != len(a.text) {
		return nil
	}
	return r.done
}

// awaitRest waits for a rest (done, from restFor), then answers from typed-ahead if it can. A
// newer request for the document ends the wait with ErrSuperseded.
func (e *Engine) awaitRest(ctx context.Context, in Input, done <-chan struct{}) (Result, bool, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	me := &flight{cancel: cancel}
	e.supersede(in.DocKey, me)
	defer e.finish(in.DocKey, me)
	select {
	case <-done:
	case <-ctx.Done():
		return Result{}, false, e.ended(ctx, ctx.Err())
	}
	r, ok := e.typedAhead(in, e.cfg.Now())
	if ok {
		e.stats.typedAhead.Add(1)
	}
	return r, ok, nil
}

// Close stops the streams running on after their answers and waits for every stream the
// engine started. Call it once the requests have ended.
func (e *Engine) Close() {
	e.dropRests()
	e.wg.Wait()
}
