// Package billing is the billing logic of the account plane: it verifies Stripe's and Polar's
// webhook deliveries, turns the events that matter into one normalised Change, applies a Change
// to an account idempotently and safely out of order, and starts checkouts (a Stripe Checkout
// Session through stripe-go, or a configured Polar checkout link).
//
// It owns no HTTP server and no database: the account service's handlers call Webhooks.Stripe
// or Webhooks.Polar with the raw request, then Apply with the store, then publish what the
// Result says changed. docs/billing.md is the operator's side of the same rules.
package billing

import (
	"errors"
	"log/slog"
	"time"
)

// Providers, as they appear in Change.Provider and Account.BillingProvider.
const (
	Stripe = "stripe"
	Polar  = "polar"
)

// Errors the webhook methods return, wrapped with a reason that never quotes a secret. The
// handler answers ErrTooLarge with 413, the others with 400; nothing was changed for any of them.
var (
	// ErrSignature: no signature header, or no signature made with any configured secret.
	ErrSignature = errors.New("billing: bad webhook signature")
	// ErrStale: a genuine signature whose timestamp is outside the tolerance (a replay, or a
	// clock that is far off).
	ErrStale = errors.New("billing: webhook timestamp outside tolerance")
	// ErrMalformed: headers or body that cannot be read as the provider's format.
	ErrMalformed = errors.New("billing: malformed webhook")
	// ErrTooLarge: a body over MaxBodyBytes.
	ErrTooLarge = errors.New("billing: webhook body too large")
)

// MaxBodyBytes caps a webhook body; the providers' subscription events are a few kilobytes.
const MaxBodyBytes = 1 << 20

// Defaults for Config.
const (
	DefaultTolerance     = 5 * time.Minute
	DefaultStripeAPIBase = "https://api.stripe.com"
)

// Config is the billing part of the account service's settings. Zero fields take the defaults
// in brackets.
type Config struct {
	// StripeSecrets are the signing secrets (whsec_...) of the Stripe webhook endpoint. A
	// delivery is accepted when any one of them signed it; during a rotation list the new and
	// the old secret, and drop the old one when Stripe stops signing with it. [none: Stripe
	// webhooks are refused]
	StripeSecrets []string `toml:"stripe_secrets"`
	// PolarSecrets are the secrets of the Polar webhook endpoint, exactly as Polar's dashboard
	// shows them (whsec_...); both of Polar's signing conventions are recognised. Rotation as
	// for StripeSecrets. [none: Polar webhooks are refused]
	PolarSecrets []string `toml:"polar_secrets"`
	// Tolerance is how far a delivery's signed timestamp may be from now, either way. [5m]
	Tolerance time.Duration `toml:"tolerance"`
	// Plans maps a Stripe price id (price_...), a Stripe product id (prod_...), or a Polar
	// product or price id (a UUID) to a plan name of the gateway's Plans. An id that maps to
	// nothing grants no plan. [none]
	Plans PlanMap `toml:"plans"`
	// StripeAPIBase is the base URL of Stripe's API, changed only for tests. [https://api.stripe.com]
	StripeAPIBase string `toml:"stripe_api_base"`
	// StripeKey is the secret API key (sk_... or rk_... with Checkout Sessions write) used to
	// create Checkout Sessions. [none: no Stripe checkout]
	StripeKey string `toml:"stripe_key"`
	// PolarCheckoutURL is a Polar checkout link (https://buy.polar.sh/polar_cl_...); the
	// account's email and id are added to it as query parameters. [none: no Polar checkout]
	PolarCheckoutURL string `toml:"polar_checkout_url"`
	// SuccessURL and CancelURL are where Stripe Checkout sends the browser back to. SuccessURL
	// may contain {CHECKOUT_SESSION_ID}. [none: required for Stripe checkout]
	SuccessURL string `toml:"success_url"`
	CancelURL  string `toml:"cancel_url"`
	// Now is the clock; time.Now when nil.
	Now func() time.Time `toml:"-"`
}

func (c Config) withDefaults() Config {
	if c.Tolerance <= 0 {
		c.Tolerance = DefaultTolerance
	}
	if c.StripeAPIBase == "" {
		c.StripeAPIBase = DefaultStripeAPIBase
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// PlanMap maps price and product ids to plan names.
type PlanMap map[string]string

// Plan returns the plan of the first id that maps to one, or "".
func (m PlanMap) Plan(ids []string) string {
	for _, id := range ids {
		if p := m[id]; p != "" {
			return p
		}
	}
	return ""
}

// Subscription statuses. Both providers use Stripe's vocabulary.
const (
	StatusActive            = "active"
	StatusTrialing          = "trialing"
	StatusPastDue           = "past_due"
	StatusIncomplete        = "incomplete"
	StatusIncompleteExpired = "incomplete_expired"
	StatusCanceled          = "canceled"
	StatusUnpaid            = "unpaid"
	StatusPaused            = "paused"
)

// Grants reports whether a subscription in this status gives its plan: active, trialing, and
// past_due (the grace while the provider retries the payment). Every other status, including
// the ones this package does not know, gives no plan.
func Grants(status string) bool {
	switch status {
	case StatusActive, StatusTrialing, StatusPastDue:
		return true
	}
	return false
}

// Change is one billing event, normalised across providers: the state a subscription was in
// at EventTime.
type Change struct {
	Provider  string    // Stripe or Polar
	EventID   string    // Stripe's evt_... id; Polar's webhook-id
	EventType string    // the provider's event type, for logs
	EventTime time.Time // when the provider produced this state (not when it arrived)
	// CustomerID and SubscriptionID are the provider's ids.
	CustomerID     string
	SubscriptionID string
	// Email is the customer's email, when the event carries it (Stripe Checkout and invoices,
	// every Polar subscription event).
	Email string
	// AccountRef is the account id the checkout was started for, when the event carries it
	// (Stripe's client_reference_id, Polar's reference_id metadata).
	AccountRef string
	// Prices are the price and product ids the event names; Plan is the first that maps.
	Prices []string
	Plan   string
	// Status is the subscription's status (the Status constants).
	Status string
}

// LogValue leaves the email out of logs.
func (c Change) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("provider", c.Provider),
		slog.String("event_id", c.EventID),
		slog.String("event_type", c.EventType),
		slog.Time("event_time", c.EventTime),
		slog.String("customer", c.CustomerID),
		slog.String("subscription", c.SubscriptionID),
		slog.String("plan", c.Plan),
		slog.String("status", c.Status),
	)
}
