package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/codingplan/codingplan/backend/internal/billing"
	"github.com/codingplan/codingplan/backend/internal/store"
)

// Checkout starts a subscription with a payment provider (*billing.Checkout). Errors wrapping
// billing.ErrNotConfigured mean the provider has no settings; billing.ErrUnknownPrice, that
// the price maps to no plan.
type Checkout interface {
	Stripe(ctx context.Context, acct store.Account, price string) (string, error)
	Polar(acct store.Account) (string, error)
}

// stripePrice is the Stripe price configured for plan: the first, in order, of the plan map's
// ids that are Stripe prices ("price_..."; product ids and Polar's ids cannot start a
// Checkout Session). "" when the plan has none.
func stripePrice(plans billing.PlanMap, plan string) string {
	var ids []string
	for id, p := range plans {
		if p == plan && strings.HasPrefix(id, "price_") {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// checkout is POST /v1/checkout {plan, provider}: the URL to send the browser to, as
// {"url": ...}, or a 303 to it for a form post. Without a provider, Stripe when it is
// configured, else Polar.
func (s *Server) checkout(w http.ResponseWriter, r *http.Request, id string) {
	var in struct {
		Plan     string `json:"plan"`
		Provider string `json:"provider"`
	}
	if !decode(w, r, &in) {
		return
	}
	plan, provider := strings.TrimSpace(in.Plan), strings.TrimSpace(in.Provider)
	if provider != "" && provider != billing.Stripe && provider != billing.Polar {
		writeError(w, http.StatusBadRequest, "invalid_provider", `provider must be "stripe" or "polar"`)
		return
	}
	if plan == "" || !slices.Contains(mapValues(s.o.Plans), plan) {
		writeError(w, http.StatusBadRequest, "unknown_plan", "plan must be one of the plans on sale: "+strings.Join(onSale(s.o.Plans), ", "))
		return
	}
	if s.o.Checkout == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "checkout is not configured")
		return
	}
	acct, err := s.o.Store.Account(r.Context(), id)
	if err != nil {
		s.storeError(w, "checkout", err)
		return
	}
	var u string
	err = billing.ErrNotConfigured
	if provider != billing.Polar {
		u, err = s.o.Checkout.Stripe(r.Context(), acct, stripePrice(s.o.Plans, plan))
		if provider == "" && errors.Is(err, billing.ErrNotConfigured) {
			provider = billing.Polar
		}
	}
	if provider == billing.Polar {
		u, err = s.o.Checkout.Polar(acct)
	}
	switch {
	case errors.Is(err, billing.ErrNotConfigured):
		msg := "checkout is not configured: set billing.stripe_key_env, success_url and cancel_url, or billing.polar_checkout_url"
		if in.Provider != "" {
			msg = in.Provider + " checkout is not configured"
		}
		writeError(w, http.StatusNotImplemented, "not_implemented", msg)
		return
	case errors.Is(err, billing.ErrUnknownPrice):
		writeError(w, http.StatusBadRequest, "unknown_plan", fmt.Sprintf("plan %q has no Stripe price in billing.plans", plan))
		return
	case err != nil:
		s.log.Warn("checkout failed", "account", id, "err", err)
		writeError(w, http.StatusBadGateway, "checkout_failed", "the payment provider did not start a checkout; retry later")
		return
	}
	s.log.Info("checkout started", "account", id, "plan", plan, "provider", provider)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u, http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"url": u})
}

func mapValues(m billing.PlanMap) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// onSale is the plan map's plan names, sorted, once each.
func onSale(m billing.PlanMap) []string {
	out := mapValues(m)
	slices.Sort(out)
	return slices.Compact(out)
}
