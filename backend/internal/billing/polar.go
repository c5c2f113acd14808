package billing

import (
	"encoding/json"
	"fmt"
	"time"
)

// PolarEvents lists the event types to subscribe the Polar endpoint to; each carries the whole
// subscription, so every one of them is read the same way. Every other type is acknowledged
// and ignored.
var PolarEvents = []string{
	"subscription.created",
	"subscription.updated",
	"subscription.active",
	"subscription.canceled",
	"subscription.uncanceled",
	"subscription.revoked",
	"subscription.past_due",
}

var polarSubscriptionEvents = func() map[string]bool {
	m := make(map[string]bool, len(PolarEvents))
	for _, t := range PolarEvents {
		m[t] = true
	}
	return m
}()

type polarPayload struct {
	Type      string            `json:"type"`
	Timestamp *time.Time        `json:"timestamp"`
	Data      polarSubscription `json:"data"`
}

// polarSubscription is the part of Polar's Subscription schema read here.
type polarSubscription struct {
	ID         string         `json:"id"`
	Status     string         `json:"status"`
	CreatedAt  *time.Time     `json:"created_at"`
	ModifiedAt *time.Time     `json:"modified_at"`
	CustomerID string         `json:"customer_id"`
	ProductID  string         `json:"product_id"`
	Metadata   map[string]any `json:"metadata"`
	Customer   *struct {
		ID         string  `json:"id"`
		Email      *string `json:"email"`
		ExternalID *string `json:"external_id"`
	} `json:"customer"`
	Product *struct {
		ID string `json:"id"`
	} `json:"product"`
	Prices []struct {
		ID        string `json:"id"`
		ProductID string `json:"product_id"`
	} `json:"prices"`
}

// polarRef is the metadata key Polar fills from a checkout link's reference_id parameter.
const polarRef = "reference_id"

// parsePolar reads a verified Polar webhook body; id is its webhook-id, which Polar keeps
// across redeliveries of one event. ok is false for an event type that changes nothing here.
func parsePolar(id string, body []byte, plans PlanMap) (c Change, ok bool, err error) {
	var p struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return Change{}, false, fmt.Errorf("%w: polar event: %v", ErrMalformed, err)
	}
	if p.Type == "" {
		return Change{}, false, fmt.Errorf("%w: polar event without a type", ErrMalformed)
	}
	if !polarSubscriptionEvents[p.Type] {
		return Change{}, false, nil
	}
	var ev polarPayload
	if err := json.Unmarshal(body, &ev); err != nil {
		return Change{}, false, fmt.Errorf("%w: %s: %v", ErrMalformed, p.Type, err)
	}
	s := ev.Data
	c = Change{
		Provider: Polar, EventID: id, EventType: ev.Type,
		CustomerID: s.CustomerID, SubscriptionID: s.ID, Status: s.Status,
	}
	// The subscription's own last change orders events; a fresh subscription has no
	// modified_at yet.
	switch {
	case s.ModifiedAt != nil:
		c.EventTime = *s.ModifiedAt
	case s.CreatedAt != nil:
		c.EventTime = *s.CreatedAt
	case ev.Timestamp != nil:
		c.EventTime = *ev.Timestamp
	}
	if s.Customer != nil {
		if c.CustomerID == "" {
			c.CustomerID = s.Customer.ID
		}
		c.Email = deref(s.Customer.Email)
		c.AccountRef = deref(s.Customer.ExternalID)
	}
	if ref, ok := s.Metadata[polarRef].(string); ok && ref != "" {
		c.AccountRef = ref
	}
	for _, pr := range s.Prices {
		c.Prices = appendID(c.Prices, pr.ID)
	}
	c.Prices = appendID(c.Prices, s.ProductID)
	if s.Product != nil && s.Product.ID != s.ProductID {
		c.Prices = appendID(c.Prices, s.Product.ID)
	}
	if c.SubscriptionID == "" || c.CustomerID == "" || c.Status == "" || c.EventTime.IsZero() {
		return Change{}, false, fmt.Errorf("%w: %s without id, customer, status or time", ErrMalformed, p.Type)
	}
	c.Plan = plans.Plan(c.Prices)
	return c, true, nil
}
