package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// Causes a stream's context is cancelled with, besides errDisconnected and errGoingAway.
var (
	errClientCanceled = errors.New("cancelled by the client")
	errSlowConsumer   = errors.New("client too slow to read the stream")
)

// stream is one running request.
type stream struct {
	id     string
	cancel context.CancelCauseFunc
}

// startStream admits a request frame and runs it on its own goroutine.
func (s *session) startStream(ctx context.Context, f wire.ClientFrame) {
	s.mu.Lock()
	var e *wire.Error
	id := f.ID
	switch _, dup := s.streams[f.ID]; {
	case dup:
		// Naming the id would end the stream that owns it, so this error names none.
		e, id = wire.Errorf(wire.CodeBadRequest, "id %q is in use by an open stream", f.ID), ""
	case s.draining:
		e = toWire(errGoingAway, "")
	case len(s.streams) >= s.srv.cfg.MaxInFlight:
		e = wire.Errorf(wire.CodeBadRequest, "%d streams are open on this connection, the limit (max_in_flight) is %d", len(s.streams), s.srv.cfg.MaxInFlight)
	}
	if e != nil {
		s.mu.Unlock()
		s.log.Debug("request refused", "id", f.ID, "code", e.Code)
		s.enqueue(marshal(wire.ErrorFrame(id, e)))
		f.Wipe()
		return
	}
	sctx, cancel := context.WithCancelCause(ctx)
	st := &stream{id: f.ID, cancel: cancel}
	s.streams[f.ID] = st
	s.active++
	plan, limit := s.plan, s.limit
	s.streamsWG.Add(1)
	s.mu.Unlock()
	go func() { // owned by run, through streamsWG
		defer s.streamsWG.Done()
		defer f.Wipe() // the request's content, once nothing reads it
		defer cancel(nil)
		s.runStream(sctx, st, f, plan, limit)
	}()
}

// cancelStream handles a cancel frame. An unknown id is ignored: the stream may have ended
// while the cancel was on its way, and its done or error frame is then already sent.
func (s *session) cancelStream(id string) {
	s.mu.Lock()
	st := s.streams[id]
	s.mu.Unlock()
	if st != nil {
		st.cancel(errClientCanceled)
	}
}

// runStream resolves the model, takes a lease, streams the model's output as delta frames and
// ends with exactly one done or error frame (none when the client has gone).
func (s *session) runStream(ctx context.Context, st *stream, f wire.ClientFrame, plan string, limit int) {
	clock := s.srv.deps.Clock
	start := clock.Now()
	var firstToken time.Duration
	s.srv.deps.Observer.StreamStarted()
	if s.log.Enabled(ctx, slog.LevelDebug) { // spares the arguments' boxing at info level
		s.log.Debug("stream started", "id", st.id, "op", f.Op, "model", f.Model, "bytes", requestBytes(&f))
	}

	n := 1 // suggestions
	if f.Completion != nil {
		n = f.Completion.Suggestions()
	}
	out := heldOutput{stream: st.id, send: func(b *frameBuf) error { return s.sendDelta(ctx, st, b) }}
	defer out.discard()
	var res upstream.Result
	provider, held, err := s.admitStream(ctx, st, f.Model, plan, limit)
	if err == nil {
		req := &upstream.Request{Op: f.Op, Model: f.Model, Completion: f.Completion, Edit: f.Edit, MaxTokens: f.MaxTokens, Stop: f.Stop, N: n}
		sink := func(index int, text []byte) error {
			if len(text) > 0 && firstToken == 0 {
				firstToken = clock.Since(start)
			}
			return out.write(index, text)
		}
		res, err = provider.Stream(ctx, req, sink)
		if err == nil {
			err = out.flush()
		}
	}
	if err != nil && ctx.Err() != nil {
		// Whatever the provider made of the cancellation, the cause is what counts.
		err = context.Cause(ctx)
	}
	s.finishStream(ctx, st, plan, held, n, res, err, start, firstToken)
}

// admitStream resolves the plan's model and takes a lease for the stream, waiting in the
// lease queue (and telling the client its place) when the plan's limit is reached. The
// provider sees the request only once the lease is held: a plan's limit holds at the
// provider, not only in Valkey.
func (s *session) admitStream(ctx context.Context, st *stream, model, plan string, limit int) (upstream.Provider, Lease, error) {
	deps := &s.srv.deps
	provider, err := deps.Router.Resolve(plan, model)
	if err != nil {
		return nil, nil, err
	}
	grant, err := deps.Leases.Acquire(ctx, s.user, limit, func(position int) {
		s.enqueue(marshal(wire.ServerFrame{
			Type: wire.TypeQueued, ID: st.id, Position: position,
			Plan: &wire.Plan{Name: plan, Concurrency: limit, InUse: limit},
		}))
	})
	if err != nil {
		return nil, nil, err
	}
	// A lease lost while the stream runs stops it, provider call included.
	grant.OnLost(st.cancel)
	return provider, grant, nil
}

// finishStream ends a stream of n suggestions that ran, or failed, with res and err: it sends
// the done frames (one per suggestion) or the error frame, releases the lease held (nil when
// none was taken), reports the stream's stats, records its usage and closes a draining
// session once its last stream has ended.
//
// On success the lease is released right after done is queued rather than before it: the
// release's Valkey round trip then overlaps the frame's way to the client instead of adding to
// every request's latency. A next request that still finds the slot taken waits in the lease
// queue, which a release on this node wakes at once. Every other ending releases first.
func (s *session) finishStream(ctx context.Context, st *stream, plan string, held Lease, n int, res upstream.Result, err error, start time.Time, firstToken time.Duration) {
	deps := &s.srv.deps
	s.mu.Lock()
	delete(s.streams, st.id)
	s.mu.Unlock()

	stats := StreamStats{Outcome: "ok", FirstToken: firstToken, Duration: deps.Clock.Since(start), Usage: res.Usage}
	if err == nil {
		// One done per suggestion, in index order; the last one carries the usage and ends the
		// stream (see docs/protocol.md).
		for i := range n {
			f := wire.ServerFrame{Type: wire.TypeDone, ID: st.id, Index: i, FinishReason: finishOf(&res, i)}
			if i == n-1 {
				f.Usage = &res.Usage
			}
			done := marshal(f)
			// With room in the queue, the release below overlaps the frame's way out; a slow
			// reader must not hold its slot: release first, then wait for room.
			if !s.trySendInline(done) {
				if held != nil {
					held.Release()
					held = nil
				}
				s.enqueue(done)
			}
		}
	} else {
		// Errors, cancels and slow consumers free the slot, for every node, before anything
		// else.
		if held != nil {
			held.ReleaseNow()
			held = nil
		}
		e := toWire(err, plan)
		stats.Outcome = string(e.Code)
		if !errors.Is(err, errDisconnected) {
			s.enqueue(marshal(wire.ErrorFrame(st.id, e)))
		}
	}
	if held != nil {
		held.Release()
		held = nil
	}
	deps.Observer.StreamEnded(stats)
	// Typed attributes: the one line every stream logs boxes nothing.
	s.log.LogAttrs(ctx, slog.LevelInfo, "stream ended", slog.String("id", st.id), slog.String("outcome", stats.Outcome),
		slog.Any("err", errOrNil(err)), slog.Int64("first_token_ms", firstToken.Milliseconds()),
		slog.Int64("duration_ms", stats.Duration.Milliseconds()),
		slog.Int("prompt_tokens", res.Usage.PromptTokens), slog.Int("completion_tokens", res.Usage.CompletionTokens))
	if err == nil || res.Usage != (wire.Usage{}) {
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if err := deps.Meter.Record(mctx, s.user, res.Usage); err != nil {
			s.log.Warn("usage not recorded", "id", st.id, "err", err)
		}
		cancel()
	}

	s.mu.Lock()
	s.active--
	closeNow := s.draining && s.active == 0
	s.mu.Unlock()
	if closeNow {
		s.closeWith(nil, websocket.CloseGoingAway, "shutdown")
	}
}

// finishOf is the finish reason of suggestion i: suggestion 0's as the provider gave it, as
// it always was, and stop for a later one the provider said nothing about.
func finishOf(res *upstream.Result, i int) string {
	if i == 0 {
		return res.FinishReason
	}
	return res.Finish(i)
}

// heldOutput holds a stream's output until the provider's next flush (see upstream.Sink), so
// that the pieces of one read of the provider's stream leave in one delta frame and one
// write instead of one each. A frame holds at most maxMerge bytes unless one piece is larger,
// and the text of one suggestion.
type heldOutput struct {
	stream string
	send   func(*frameBuf) error // takes the buffer
	held   *frameBuf
}

// write holds text of suggestion index, or flushes when text is empty.
func (o *heldOutput) write(index int, text []byte) error {
	if len(text) == 0 {
		return o.flush()
	}
	if o.held != nil && (len(o.held.b)+len(text) > maxMerge || o.held.index != index) {
		if err := o.flush(); err != nil {
			return err
		}
	}
	if o.held == nil {
		o.held = getBuf()
		o.held.stream, o.held.index = o.stream, index
	}
	o.held.b = wire.AppendClear(o.held.b, text) // the writer encodes it
	return nil
}

// flush sends what is held.
func (o *heldOutput) flush() error {
	if o.held == nil {
		return nil
	}
	b := o.held
	o.held = nil
	return o.send(b)
}

// discard drops what is held (the stream failed).
func (o *heldOutput) discard() {
	if o.held != nil {
		putBuf(o.held)
		o.held = nil
	}
}

// sendDelta queues one delta frame. When the queue stays full for SlowConsumer, the stream is
// cancelled instead of buffering more: memory per connection stays bounded.
func (s *session) sendDelta(ctx context.Context, st *stream, b *frameBuf) error {
	if s.trySendInline(b) {
		return nil
	}
	t, slow := s.srv.deps.Clock.NewTimer(s.srv.cfg.SlowConsumer)
	defer t.Stop()
	select {
	case s.send <- b:
		s.kick()
		return nil
	case <-ctx.Done():
		putBuf(b)
		return context.Cause(ctx)
	case <-s.dead:
		putBuf(b)
		return errDisconnected
	case <-slow:
		putBuf(b)
		s.log.Info("slow consumer: cancelling stream", "id", st.id, "queued", len(s.send))
		st.cancel(errSlowConsumer)
		return errSlowConsumer
	}
}

// requestBytes is the size of a request's content, for logs.
func requestBytes(f *wire.ClientFrame) int {
	n := 0
	if c := f.Completion; c != nil {
		n += len(c.Prefix) + len(c.Suffix)
		for _, sn := range c.Snippets {
			n += len(sn.Text)
		}
	}
	if e := f.Edit; e != nil {
		n += len(e.Instruction) + len(e.Selection) + len(e.Prefix) + len(e.Suffix)
	}
	return n
}

func errOrNil(err error) any {
	if err == nil {
		return nil
	}
	return err.Error()
}
