package accounts

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/codingplan/codingplan/backend/internal/billing"
	"github.com/codingplan/codingplan/backend/internal/store"
)

func (s *Server) stripe(w http.ResponseWriter, r *http.Request) {
	s.webhook(w, r, billing.Stripe, func(h http.Header, body io.Reader) (billing.Change, bool, error) {
		return s.o.Webhooks.Stripe(h, body)
	})
}

func (s *Server) polar(w http.ResponseWriter, r *http.Request) {
	s.webhook(w, r, billing.Polar, func(h http.Header, body io.Reader) (billing.Change, bool, error) {
		return s.o.Webhooks.Polar(h, body)
	})
}

// webhook verifies and reads a delivery, applies it, and answers so that the provider retries
// exactly the deliveries that changed nothing for a reason that can pass: 400 or 413 for a
// refused delivery (never retried usefully), 503 with Retry-After for a database outage or a
// customer not linked yet, 200 otherwise.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request, provider string,
	read func(http.Header, io.Reader) (billing.Change, bool, error)) {
	if s.o.Webhooks == nil {
		unavailable(w)
		return
	}
	// billing reads at most MaxBodyBytes+1; the cap here only stops a bigger body early.
	r.Body = http.MaxBytesReader(w, r.Body, billing.MaxBodyBytes+1)
	c, ok, err := read(r.Header, r.Body)
	switch {
	case errors.Is(err, billing.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "webhook body too large")
		return
	case errors.Is(err, billing.ErrSignature), errors.Is(err, billing.ErrStale), errors.Is(err, billing.ErrMalformed):
		s.log.Warn("webhook refused", "provider", provider, "addr", clientAddr(r), "err", err)
		writeError(w, http.StatusBadRequest, "invalid_webhook", "webhook refused")
		return
	case err != nil:
		s.log.Error("webhook", "provider", provider, "err", err)
		writeError(w, http.StatusBadRequest, "invalid_webhook", "webhook refused")
		return
	case !ok:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored"})
		return
	}
	// A provider that hangs up must not leave an event half applied: Apply runs to its end.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	res, err := billing.Apply(ctx, s.o.Store, c, s.o.Plans)
	switch {
	case errors.Is(err, billing.ErrNotLinked):
		s.log.Info("webhook: customer not linked yet; the provider will retry", "change", c)
		unavailable(w)
		return
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		s.log.Warn("webhook: database unavailable", "change", c, "err", err)
		unavailable(w)
		return
	case err != nil:
		s.log.Error("webhook: apply", "change", c, "err", err)
		unavailable(w)
		return
	}
	s.log.Info("webhook", "change", c, "outcome", string(res.Outcome), "account", res.AccountID,
		"old_plan", res.OldPlan, "new_plan", res.NewPlan, "old_status", res.OldStatus, "new_status", res.NewStatus)
	if res.Outcome == billing.Applied && s.o.Notify != nil {
		if err := Announce(ctx, s.o.Notify, res.AccountID, res.OldPlan, res.OldStatus, res.NewPlan, res.NewStatus); err != nil {
			s.log.Warn("plan or status change not published", "account", res.AccountID, "err", err)
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": string(res.Outcome)})
}
