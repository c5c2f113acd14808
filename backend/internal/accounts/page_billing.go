package accounts

import (
	"net/http"
	"slices"
)

// The billing page group: the plan and subscription, a checkout button per plan on sale (the
// checkout of POST /v1/checkout), and the provider's customer portal to manage billing.

func (s *Server) billingRoutes(pm *http.ServeMux) {
	pm.HandleFunc("GET /billing", s.billingPage)
	pm.HandleFunc("POST /billing/checkout", s.checkoutPost)
}

// billingView is the data of billing.html.
type billingView struct {
	Plan, Status, Provider string
	Concurrency            int
	Plans                  []planOffer
	ManageURL              string
}

type planOffer struct {
	Name        string
	Concurrency int
	Current     bool
}

func (s *Server) billingPage(w http.ResponseWriter, r *http.Request) {
	a, ok := s.pageAccount(w, r)
	if !ok {
		return
	}
	p := newPage("Plan and billing")
	s.renderBilling(w, http.StatusOK, p, a.Email, a.Plan, a.Status, a.BillingProvider)
}

func (s *Server) renderBilling(w http.ResponseWriter, status int, p *page, email, plan, st, provider string) {
	v := billingView{Plan: plan, Status: st, Provider: provider, Concurrency: s.o.Settings.Plans[plan].Concurrency}
	for _, n := range onSale(s.o.Plans) {
		v.Plans = append(v.Plans, planOffer{Name: n, Concurrency: s.o.Settings.Plans[n].Concurrency, Current: n == plan})
	}
	if provider != "" {
		v.ManageURL = s.o.Settings.Billing.ManageURL
	}
	p.Email, p.Data = email, v
	s.render(w, status, "billing.html", p)
}

// checkoutPost sends the browser to the provider's checkout for the plan chosen.
func (s *Server) checkoutPost(w http.ResponseWriter, r *http.Request) {
	a, f, p, ok := s.signedForm(w, r, "Plan and billing")
	if !ok {
		return
	}
	plan := f.Get("plan")
	if !slices.Contains(onSale(s.o.Plans), plan) {
		p.Errors["plan"] = "Choose one of the plans listed."
		s.renderBilling(w, http.StatusBadRequest, p, a.Email, a.Plan, a.Status, a.BillingProvider)
		return
	}
	u, fail := s.startCheckout(r.Context(), a.ID, plan, "")
	if fail != nil && fail.status == 0 {
		s.pageStoreError(w, "checkout", fail.err)
		return
	}
	if fail != nil {
		p.Errors["plan"] = "The checkout could not start: " + fail.msg + "."
		s.renderBilling(w, fail.status, p, a.Email, a.Plan, a.Status, a.BillingProvider)
		return
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}
