package billing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// The Stripe event types that change an account; every other type is acknowledged and ignored.
const (
	stripeCheckoutCompleted = "checkout.session.completed"
	stripeInvoiceFailed     = "invoice.payment_failed"
)

var stripeSubscriptionEvents = map[string]bool{
	"customer.subscription.created": true,
	"customer.subscription.updated": true,
	"customer.subscription.deleted": true,
	"customer.subscription.paused":  true,
	"customer.subscription.resumed": true,
}

// StripeEvents lists the event types to subscribe the Stripe endpoint to.
var StripeEvents = []string{
	stripeCheckoutCompleted,
	"customer.subscription.created",
	"customer.subscription.updated",
	"customer.subscription.deleted",
	"customer.subscription.paused",
	"customer.subscription.resumed",
	stripeInvoiceFailed,
}

// Metadata keys set on the Checkout Sessions this package creates.
const (
	metaAccount = "account_id"
	metaPrice   = "price"
)

type stripeEvent struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Type    string `json:"type"`
	Created int64  `json:"created"`
	Data    struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// expandable is a Stripe field that is an id, or the object itself when expanded, or null.
type expandable string

func (e *expandable) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var o struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*e = expandable(o.ID)
		return nil
	}
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s != nil {
		*e = expandable(*s)
	}
	return nil
}

type stripeSubscription struct {
	ID       string            `json:"id"`
	Customer expandable        `json:"customer"`
	Status   string            `json:"status"`
	Metadata map[string]string `json:"metadata"`
	Items    struct {
		Data []struct {
			Price struct {
				ID      string     `json:"id"`
				Product expandable `json:"product"`
			} `json:"price"`
		} `json:"data"`
	} `json:"items"`
}

type stripeCheckoutSession struct {
	ID                string            `json:"id"`
	Mode              string            `json:"mode"`
	Status            string            `json:"status"`
	PaymentStatus     string            `json:"payment_status"`
	Customer          expandable        `json:"customer"`
	CustomerEmail     *string           `json:"customer_email"`
	Subscription      expandable        `json:"subscription"`
	ClientReferenceID *string           `json:"client_reference_id"`
	Metadata          map[string]string `json:"metadata"`
	CustomerDetails   *struct {
		Email *string `json:"email"`
	} `json:"customer_details"`
}

type stripeInvoice struct {
	ID            string     `json:"id"`
	Customer      expandable `json:"customer"`
	CustomerEmail *string    `json:"customer_email"`
	BillingReason string     `json:"billing_reason"`
	// Subscription is where API versions before 2025-03-31 put the subscription; later ones
	// put it under parent.subscription_details.
	Subscription expandable `json:"subscription"`
	Parent       *struct {
		SubscriptionDetails *struct {
			Subscription expandable        `json:"subscription"`
			Metadata     map[string]string `json:"metadata"`
		} `json:"subscription_details"`
	} `json:"parent"`
}

// parseStripe reads a verified Stripe event body. ok is false for an event type that changes
// nothing here. The plan is mapped through plans.
func parseStripe(body []byte, plans PlanMap) (c Change, ok bool, err error) {
	var ev stripeEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return Change{}, false, fmt.Errorf("%w: stripe event: %v", ErrMalformed, err)
	}
	if ev.ID == "" || ev.Type == "" || ev.Created <= 0 || ev.Object != "event" {
		return Change{}, false, fmt.Errorf("%w: stripe event without id, type, created or object", ErrMalformed)
	}
	c = Change{Provider: Stripe, EventID: ev.ID, EventType: ev.Type, EventTime: time.Unix(ev.Created, 0)}
	obj := ev.Data.Object
	switch {
	case stripeSubscriptionEvents[ev.Type]:
		var s stripeSubscription
		if err := json.Unmarshal(obj, &s); err != nil {
			return Change{}, false, fmt.Errorf("%w: %s: %v", ErrMalformed, ev.Type, err)
		}
		c.CustomerID, c.SubscriptionID, c.Status = string(s.Customer), s.ID, s.Status
		c.AccountRef = s.Metadata[metaAccount]
		for _, it := range s.Items.Data {
			c.Prices = appendID(c.Prices, it.Price.ID, string(it.Price.Product))
		}
	case ev.Type == stripeCheckoutCompleted:
		var s stripeCheckoutSession
		if err := json.Unmarshal(obj, &s); err != nil {
			return Change{}, false, fmt.Errorf("%w: %s: %v", ErrMalformed, ev.Type, err)
		}
		if s.Mode != "subscription" {
			return Change{}, false, nil
		}
		c.CustomerID, c.SubscriptionID = string(s.Customer), string(s.Subscription)
		c.Email = deref(s.CustomerEmail)
		if s.CustomerDetails != nil && deref(s.CustomerDetails.Email) != "" {
			c.Email = deref(s.CustomerDetails.Email)
		}
		c.AccountRef = deref(s.ClientReferenceID)
		if c.AccountRef == "" {
			c.AccountRef = s.Metadata[metaAccount]
		}
		c.Prices = appendID(c.Prices, s.Metadata[metaPrice])
		// A completed session has a paid (or free-trial) subscription; an asynchronous
		// payment method leaves it unpaid until invoice.paid and subscription.updated.
		c.Status = StatusIncomplete
		if s.PaymentStatus == "paid" || s.PaymentStatus == "no_payment_required" {
			c.Status = StatusActive
		}
	case ev.Type == stripeInvoiceFailed:
		var in stripeInvoice
		if err := json.Unmarshal(obj, &in); err != nil {
			return Change{}, false, fmt.Errorf("%w: %s: %v", ErrMalformed, ev.Type, err)
		}
		c.SubscriptionID = string(in.Subscription)
		if in.Parent != nil && in.Parent.SubscriptionDetails != nil {
			c.SubscriptionID = string(in.Parent.SubscriptionDetails.Subscription)
			c.AccountRef = in.Parent.SubscriptionDetails.Metadata[metaAccount]
		}
		// The first invoice of a subscription failing leaves it incomplete, which
		// customer.subscription.updated reports; only a renewal makes it past due.
		if c.SubscriptionID == "" || in.BillingReason == "subscription_create" {
			return Change{}, false, nil
		}
		c.CustomerID, c.Email, c.Status = string(in.Customer), deref(in.CustomerEmail), StatusPastDue
	default:
		return Change{}, false, nil
	}
	if c.CustomerID == "" {
		return Change{}, false, fmt.Errorf("%w: %s without a customer", ErrMalformed, ev.Type)
	}
	c.Plan = plans.Plan(c.Prices)
	return c, true, nil
}

func appendID(ids []string, add ...string) []string {
	for _, id := range add {
		if id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
