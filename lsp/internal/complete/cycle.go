package complete

import (
	"context"
	"time"

	wire "github.com/codingplan/codingplan/shared"
)

// Cycling: an explicitly invoked completion returns up to Settings.Suggestions distinct
// suggestions, from one request that asks the backend for that many (wire Completion.N), so
// that the editor's next/previous suggestion keys have something to cycle through.

// eachStreamer streams a request of several suggestions (remote.Client implements it).
type eachStreamer interface {
	StreamEach(ctx context.Context, req wire.ClientFrame, onDelta func(index int, text []byte)) (wire.ServerFrame, error)
}

// suggestions is how many suggestions in asks for: Settings.Suggestions when the user asked,
// one while typing.
func suggestions(in Input) int {
	if in.Trigger != Invoked || in.Settings.Suggestions < 2 {
		return 1
	}
	return min(in.Settings.Suggestions, wire.MaxSuggestions)
}

// completeEach answers an invoked request for n > 1 suggestions. The suggestion the cache
// holds for this context (the one the editor shows) comes first, so that "next" moves to a
// new one; the cache keeps suggestion 0 of a new answer, as for a single suggestion.
func (e *Engine) completeEach(ctx context.Context, in Input, v view, sit situation, key uint64, n int, s eachStreamer) (Result, error) {
	now := e.cfg.Now()
	first, hit := e.cache.get(key, now)
	if hit {
		e.stats.cacheHits.Add(1)
	}
	e.dropRests() // as for one suggestion: this request needs a slot
	req := e.request(in, v, sit)
	req.Completion.N = n
	raws, err := e.streamEach(ctx, req, sit, n, s)
	if err != nil {
		if hit && ctx.Err() == nil {
			return e.answer(in, v, sit, first, true, now), nil
		}
		return Result{}, e.ended(ctx, err)
	}
	if hit {
		raws = append([]string{first}, raws...)
	} else if len(raws) > 0 {
		e.putIfSameModel(key, in, v, sit, raws[0])
	}
	return e.answerEach(in, v, sit, raws, n, e.cfg.Now()), nil
}

// streamEach sends req and collects its n suggestions, stopping the stream once each is
// known to be complete.
func (e *Engine) streamEach(ctx context.Context, req wire.ClientFrame, sit situation, n int, s eachStreamer) ([]string, error) {
	e.stats.sent.Add(1)
	sctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	bufs := make([][]byte, n)
	complete := make([]bool, n)
	left, enough := n, false
	_, err := s.StreamEach(sctx, req, func(i int, text []byte) {
		if enough || i < 0 || i >= n || complete[i] {
			return
		}
		bufs[i] = append(bufs[i], text...)
		if hasNewline(text) && sit.complete(bufs[i]) {
			complete[i] = true
			if left--; left == 0 {
				enough = true
				stop(errEnough)
			}
		}
	})
	if err != nil && !(enough && ctx.Err() == nil) {
		return nil, err
	}
	if enough {
		e.stats.earlyStops.Add(1)
	}
	out := make([]string, n)
	for i, b := range bufs {
		out[i] = string(b)
	}
	return out, nil
}

// answerEach post-processes raw suggestions into up to n distinct items, dropping empty and
// repeated ones (after post-processing: two answers that differ only past the cut are one).
func (e *Engine) answerEach(in Input, v view, sit situation, raws []string, n int, now time.Time) Result {
	seen := make(map[string]bool, len(raws))
	var items []Item
	for _, raw := range raws {
		text := postprocess(raw, sit)
		if text == "" || seen[text] {
			continue
		}
		seen[text] = true
		if len(items) == 0 && !validSelection(in.Selected, in) {
			e.remember(in, text, now)
		}
		items = append(items, Item{InsertText: v.lead + text, Start: v.start, End: v.end, ID: e.newID()})
		if len(items) == n {
			break
		}
	}
	if len(items) == 0 {
		e.stats.empty.Add(1)
	}
	return Result{Items: items}
}
