// Package upstream calls model providers and relays their streamed output.
package upstream

import (
	"context"
	"errors"

	wire "github.com/codingplan/codingplan/shared"
)

// Request is one model call. Every content field is a wire.Text, which never prints.
type Request struct {
	Op         string           // wire.OpCompletion or wire.OpEdit
	Model      string           // the provider's own model id, after alias resolution
	Completion *wire.Completion // set for wire.OpCompletion
	Edit       *wire.Edit       // set for wire.OpEdit
	MaxTokens  int              // 0 means the model's configured default, for each suggestion
	Stop       []wire.Text
	// N is how many suggestions to make, each with its index from 0 to N-1; 0 means 1, and
	// values above wire.MaxSuggestions are served as that many (see suggestions).
	N int
}

// suggestions is how many suggestions req asks for, 1 to wire.MaxSuggestions.
func (req *Request) suggestions() int { return min(max(req.N, 1), wire.MaxSuggestions) }

// Result is how a stream ended.
type Result struct {
	FinishReason string // how suggestion 0 ended: wire.FinishStop or wire.FinishLength
	// Later is how suggestions 1 to N-1 ended, in order, for a request of N > 1 suggestions;
	// Finish reads it.
	Later [wire.MaxSuggestions - 1]string
	Usage wire.Usage // of all suggestions together
}

// Finish is how suggestion index ended: stop where the provider did not say.
func (r *Result) Finish(index int) string {
	reason := r.FinishReason
	if index > 0 {
		reason = r.Later[index-1]
	}
	if reason == "" {
		return wire.FinishStop
	}
	return reason
}

// Sink receives each piece of model output as soon as it arrives, with the index of the
// suggestion it belongs to (always 0 for a request of one suggestion). The slice is only
// valid during the call. An error from the sink ends the stream with that error. A provider
// calls its sink from one goroutine at a time.
//
// A call with no text is a flush, whatever its index: the provider has handed on everything
// that has arrived and is about to wait for more. A sink may hold output back to pass on many
// pieces together (one frame, one write), but only until the next flush or the end of the
// stream. Every provider flushes before each wait, so nothing is held while the model is still
// thinking.
type Sink func(index int, text []byte) error

// Provider streams one model call.
type Provider interface {
	Stream(ctx context.Context, req *Request, sink Sink) (Result, error)
}

// Errors a provider returns, wrapped with detail that never holds content. The gateway maps
// them to wire codes.
var (
	// ErrUnavailable: the provider could not be reached, refused the connection, timed out
	// before answering, or said it is overloaded (upstream_unavailable).
	ErrUnavailable = errors.New("model provider unavailable")
	// ErrFailed: the provider answered with an error, broke off the stream, or sent
	// something this package cannot parse (upstream_error).
	ErrFailed = errors.New("model provider failed")
	// ErrUnsupported: the model cannot do this kind of request (the local model only completes
	// code). Providers return it together with ErrFailed, so a fallback model can take over.
	ErrUnsupported = errors.New("the model does not support this operation")
)
