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
	u, f := s.startCheckout(r.Context(), id, in.Plan, in.Provider)
	if f != nil {
		if f.status == 0 {
			s.storeError(w, "checkout", f.err)
			return
		}
		writeError(w, f.status, f.code, f.msg)
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u, http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"url": u})
}

// failure is why an action of the API and the pages failed: an answer's status, code and
// message, or (status 0) a store error for storeError.
type failure struct {
	status    int
	code, msg string
	err       error
}

// startCheckout returns the provider's checkout URL for the account and plan (see checkout).
func (s *Server) startCheckout(ctx context.Context, id, plan, provider string) (string, *failure) {
	plan, provider = strings.TrimSpace(plan), strings.TrimSpace(provider)
	given := provider
	if provider != "" && provider != billing.Stripe && provider != billing.Polar {
		return "", &failure{status: http.StatusBadRequest, code: "invalid_provider", msg: `provider must be "stripe" or "polar"`}
	}
	if plan == "" || !slices.Contains(mapValues(s.o.Plans), plan) {
		return "", &failure{status: http.StatusBadRequest, code: "unknown_plan", msg: "plan must be one of the plans on sale: " + strings.Join(onSale(s.o.Plans), ", ")}
	}
	if s.o.Checkout == nil {
		return "", &failure{status: http.StatusNotImplemented, code: "not_implemented", msg: "checkout is not configured"}
	}
	acct, err := s.o.Store.Account(ctx, id)
	if err != nil {
		return "", &failure{err: err}
	}
	var u string
	err = billing.ErrNotConfigured
	if provider != billing.Polar {
		u, err = s.o.Checkout.Stripe(ctx, acct, stripePrice(s.o.Plans, plan))
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
		if given != "" {
			msg = given + " checkout is not configured"
		}
		return "", &failure{status: http.StatusNotImplemented, code: "not_implemented", msg: msg}
	case errors.Is(err, billing.ErrUnknownPrice):
		return "", &failure{status: http.StatusBadRequest, code: "unknown_plan", msg: fmt.Sprintf("plan %q has no Stripe price in billing.plans", plan)}
	case err != nil:
		s.log.Warn("checkout failed", "account", id, "err", err)
		return "", &failure{status: http.StatusBadGateway, code: "checkout_failed", msg: "the payment provider did not start a checkout; retry later"}
	}
	s.log.Info("checkout started", "account", id, "plan", plan, "provider", provider)
	return u, nil
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
