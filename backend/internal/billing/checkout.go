package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/stripe/stripe-go/v82"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// Errors of the checkout methods.
var (
	// ErrNotConfigured: the provider's checkout settings are missing.
	ErrNotConfigured = errors.New("billing: checkout not configured")
	// ErrUnknownPrice: the price is not one of the configured Plans.
	ErrUnknownPrice = errors.New("billing: price maps to no plan")
)

// Checkout starts a subscription for an account.
type Checkout struct {
	cfg    Config
	stripe *stripe.Client // nil without a StripeKey
}

// NewCheckout returns a Checkout for cfg; hc is the HTTP client for Stripe's API (nil: a
// default one).
func NewCheckout(cfg Config, hc *http.Client) *Checkout {
	cfg = cfg.withDefaults()
	c := &Checkout{cfg: cfg}
	if cfg.StripeKey != "" {
		backend := &stripe.BackendConfig{
			URL:           stripe.String(cfg.StripeAPIBase),
			HTTPClient:    hc,
			LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
		}
		c.stripe = stripe.NewClient(cfg.StripeKey, stripe.WithBackends(stripe.NewBackendsWithConfig(backend)))
	}
	return c
}

// Stripe creates a Checkout Session in subscription mode for one unit of price and returns
// the URL to send the browser to. The session carries the account id as client_reference_id
// and in its metadata and its subscription's, and the price in its metadata, so that
// checkout.session.completed can be matched and mapped to a plan on its own.
func (c *Checkout) Stripe(ctx context.Context, acct store.Account, price string) (string, error) {
	if c.stripe == nil || c.cfg.SuccessURL == "" || c.cfg.CancelURL == "" {
		return "", fmt.Errorf("%w: stripe needs stripe_key, success_url and cancel_url", ErrNotConfigured)
	}
	if c.cfg.Plans[price] == "" {
		return "", ErrUnknownPrice
	}
	p := &stripe.CheckoutSessionCreateParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
		LineItems:         []*stripe.CheckoutSessionCreateLineItemParams{{Price: stripe.String(price), Quantity: stripe.Int64(1)}},
		SuccessURL:        stripe.String(c.cfg.SuccessURL),
		CancelURL:         stripe.String(c.cfg.CancelURL),
		ClientReferenceID: stripe.String(acct.ID),
		Metadata:          map[string]string{metaAccount: acct.ID, metaPrice: price},
		SubscriptionData: &stripe.CheckoutSessionCreateSubscriptionDataParams{
			Metadata: map[string]string{metaAccount: acct.ID},
		},
	}
	// Stripe takes either a customer or an email: reuse the account's customer when it has one.
	if acct.BillingProvider == Stripe && acct.CustomerID != "" {
		p.Customer = stripe.String(acct.CustomerID)
	} else if acct.Email != "" {
		p.CustomerEmail = stripe.String(acct.Email)
	}
	s, err := c.stripe.V1CheckoutSessions.Create(ctx, p)
	if err != nil {
		return "", fmt.Errorf("billing: creating stripe checkout session: %w", err)
	}
	if s.URL == "" {
		return "", errors.New("billing: stripe checkout session without a url")
	}
	return s.URL, nil
}

// Polar returns the configured Polar checkout link with the account's email prefilled and
// its id as reference_id, which Polar copies into the subscription's metadata.
func (c *Checkout) Polar(acct store.Account) (string, error) {
	if c.cfg.PolarCheckoutURL == "" {
		return "", fmt.Errorf("%w: polar needs polar_checkout_url", ErrNotConfigured)
	}
	u, err := url.Parse(c.cfg.PolarCheckoutURL)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("%w: polar_checkout_url is not an http(s) URL", ErrNotConfigured)
	}
	q := u.Query()
	if acct.Email != "" {
		q.Set("customer_email", acct.Email)
	}
	q.Set(polarRef, acct.ID)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
