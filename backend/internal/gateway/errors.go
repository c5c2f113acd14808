package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/lease"
	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// toWire maps an error from any collaborator to the protocol error a client gets. This is the
// one place where package errors become wire codes. Messages are fixed text: the underlying
// error stays in the server's log.
func toWire(err error, plan string) *wire.Error {
	var we *wire.Error
	var le *lease.LimitError
	switch {
	case errors.As(err, &we):
		return we
	case errors.Is(err, lease.ErrLost) && errors.Is(err, lease.ErrLimit):
		return &wire.Error{Code: wire.CodeRateLimited, RetryAfterMS: 1000,
			Message: "the stream was stopped: its slot was lost in a server fault and the plan's concurrency is now in use"}
	case errors.Is(err, lease.ErrLost):
		return &wire.Error{Code: wire.CodeInternal, RetryAfterMS: 1000,
			Message: "the stream was stopped: the server could not confirm the plan's concurrency with its lease store"}
	case errors.As(err, &le) && errors.Is(err, lease.ErrDegraded):
		return &wire.Error{Code: wire.CodeInternal, RetryAfterMS: max(le.RetryAfter.Milliseconds(), 1),
			Message: "the server cannot count the plan's concurrency right now (its lease store is unreachable); retry after retry_after_ms"}
	case errors.As(err, &le) && errors.Is(err, lease.ErrRecovering):
		return &wire.Error{Code: wire.CodeInternal, RetryAfterMS: max(le.RetryAfter.Milliseconds(), 1),
			Message: "the server's lease store restarted; new streams resume after retry_after_ms"}
	case errors.As(err, &le):
		e := &wire.Error{
			Code:         wire.CodeRateLimited,
			RetryAfterMS: max(le.RetryAfter.Milliseconds(), 1),
			Plan:         &wire.Plan{Name: plan, Concurrency: le.Limit, InUse: le.InUse},
		}
		if errors.Is(err, lease.ErrNodeBusy) {
			e.Message = "the server is at capacity; retry after retry_after_ms"
		} else {
			e.Message = pluralStreams(le.Limit, le.InUse)
		}
		return e
	case errors.Is(err, lease.ErrLimit):
		return &wire.Error{Code: wire.CodeRateLimited, Message: "the plan's concurrency is in use", RetryAfterMS: 1000}
	case errors.Is(err, lease.ErrClosed), errors.Is(err, errGoingAway):
		return &wire.Error{Code: wire.CodeInternal, Message: "the server is going away; send the request on a new connection", RetryAfterMS: 1000}
	case errors.Is(err, upstream.ErrUnknownModel):
		return wire.Errorf(wire.CodeBadRequest, "unknown model")
	case errors.Is(err, upstream.ErrNotAllowed):
		return wire.Errorf(wire.CodeQuotaExceeded, "the plan does not include this model")
	case errors.Is(err, errClientCanceled):
		return wire.Errorf(wire.CodeCanceled, "cancelled by the client")
	case errors.Is(err, errSlowConsumer):
		return wire.Errorf(wire.CodeCanceled, "the connection did not read the stream fast enough; the stream was cancelled")
	case errors.Is(err, errDisconnected):
		return wire.Errorf(wire.CodeCanceled, "the connection closed")
	case errors.Is(err, auth.ErrExpired):
		return wire.Errorf(wire.CodeTokenExpired, "the token has expired")
	case errors.Is(err, auth.ErrInvalid):
		return wire.Errorf(wire.CodeUnauthorized, "the token is not valid")
	case errors.Is(err, upstream.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return wire.Errorf(wire.CodeUpstreamUnavailable, "the model provider is unavailable; retry later")
	case errors.Is(err, upstream.ErrUnsupported):
		return wire.Errorf(wire.CodeBadRequest, "this model only completes code; code actions need a chat model configured on the backend")
	case errors.Is(err, upstream.ErrFailed):
		return wire.Errorf(wire.CodeUpstreamError, "the model provider failed")
	}
	return wire.Errorf(wire.CodeInternal, "internal error")
}

func pluralStreams(limit, inUse int) string {
	unit, verb := "streams", "are"
	if limit == 1 {
		unit = "stream"
	}
	if inUse == 1 {
		verb = "is"
	}
	return fmt.Sprintf("the plan allows %d %s at once and %d %s running", limit, unit, inUse, verb)
}
