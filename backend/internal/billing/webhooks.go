package billing

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// Webhooks verifies and reads the providers' webhook deliveries. It is safe for concurrent use.
type Webhooks struct {
	stripe, polar [][]byte // HMAC keys
	tolerance     time.Duration
	plans         PlanMap
	now           func() time.Time
}

// NewWebhooks returns a Webhooks for cfg. A provider with no secrets refuses every delivery.
func NewWebhooks(cfg Config) *Webhooks {
	cfg = cfg.withDefaults()
	return &Webhooks{
		stripe:    stripeKeys(cfg.StripeSecrets),
		polar:     polarKeys(cfg.PolarSecrets),
		tolerance: cfg.Tolerance,
		plans:     cfg.Plans,
		now:       cfg.Now,
	}
}

// Stripe verifies a delivery to POST /v1/webhooks/stripe and reads it. ok is false, with no
// error, for a genuine event that changes nothing here: answer it 2xx so that Stripe stops
// sending it. Every error means the delivery was refused with nothing changed.
func (w *Webhooks) Stripe(h http.Header, body io.Reader) (c Change, ok bool, err error) {
	b, err := readBody(body)
	if err != nil {
		return Change{}, false, err
	}
	if _, err := verifyStripe(h.Get("Stripe-Signature"), b, w.stripe, w.tolerance, w.now()); err != nil {
		return Change{}, false, err
	}
	return parseStripe(b, w.plans)
}

// Polar verifies a delivery to POST /v1/webhooks/polar (Standard Webhooks) and reads it, as
// Stripe does.
func (w *Webhooks) Polar(h http.Header, body io.Reader) (c Change, ok bool, err error) {
	b, err := readBody(body)
	if err != nil {
		return Change{}, false, err
	}
	id := h.Get("webhook-id")
	if _, err := verifyPolar(id, h.Get("webhook-timestamp"), h.Get("webhook-signature"), b, w.polar, w.tolerance, w.now()); err != nil {
		return Change{}, false, err
	}
	return parsePolar(id, b, w.plans)
}

func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %v", ErrMalformed, err)
	}
	if len(b) > MaxBodyBytes {
		return nil, ErrTooLarge
	}
	return b, nil
}
