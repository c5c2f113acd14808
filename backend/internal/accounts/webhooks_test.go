package accounts

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// recorder is a Notifier that records what it is told.
type recorder struct{ got []string }

func (r *recorder) Revoke(_ context.Context, acct, sid string) error {
	r.got = append(r.got, "revoke "+acct+" "+sid)
	return nil
}
func (r *recorder) Plan(_ context.Context, acct, plan string) error {
	r.got = append(r.got, "plan "+acct+" "+plan)
	return nil
}

func TestStripeWebhook(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		rec := &recorder{}
		r := newRig(t, st, func(o *Options) { o.Notify = rec })
		if err := st.UpdateAccount(t.Context(), store.Account{ID: "acct_42", Email: "ada@example.com", Name: "Ada", Status: store.StatusActive}); err != nil {
			t.Fatal(err)
		}
		before, _ := st.Account(t.Context(), "acct_42")
		checkout := testdata(t, "stripe_checkout_session_completed.json")
		deleted := testdata(t, "stripe_subscription_deleted.json")
		post := func(body []byte, sig string) answer {
			return r.do(nil, "POST", "/v1/webhooks/stripe", body, "Stripe-Signature", sig, "Content-Type", "application/json")
		}
		unchanged := func(what string) {
			t.Helper()
			if a, _ := st.Account(t.Context(), "acct_42"); a != before {
				t.Errorf("%s changed the account: %+v", what, a)
			}
		}
		// Refused deliveries change nothing.
		for _, tt := range []struct {
			name string
			sig  string
			want int
		}{
			{"forged", stripeSig(testNow, checkout, "whsec_forgedforgedforgedforged"), 400},
			{"no signature", "", 400},
			{"stale", stripeSig(testNow.Add(-time.Hour), checkout, stripeSecret), 400},
			{"future", stripeSig(testNow.Add(time.Hour), checkout, stripeSecret), 400},
		} {
			if a := post(checkout, tt.sig); a.code != tt.want {
				t.Errorf("%s: %d %s, want %d", tt.name, a.code, a.raw, tt.want)
			}
			unchanged(tt.name)
		}
		tampered := []byte(strings.Replace(string(checkout), "ada@example.com", "eve@example.com", 1))
		if a := post(tampered, stripeSig(testNow, checkout, stripeSecret)); a.code != 400 {
			t.Errorf("tampered body: %d", a.code)
		}
		unchanged("a tampered body")
		big := make([]byte, 1<<20+10)
		if a := post(big, stripeSig(testNow, big, stripeSecret)); a.code != 413 {
			t.Errorf("a body over 1 MiB: %d", a.code)
		}
		// The genuine checkout links the account and gives it the plan; a replay changes nothing.
		if a := post(checkout, stripeSig(testNow, checkout, stripeSecret)); a.code != 200 || a.body["status"] != "applied" {
			t.Fatalf("checkout: %d %s", a.code, a.raw)
		}
		after, _ := st.Account(t.Context(), "acct_42")
		if after.Plan != "pro" || after.Status != store.StatusActive || after.CustomerID != "cus_RZ8aKq1JjU3lfd" || after.BillingProvider != "stripe" {
			t.Errorf("after checkout: %+v", after)
		}
		if a := post(checkout, stripeSig(testNow, checkout, stripeSecret)); a.code != 200 || a.body["status"] != "duplicate" {
			t.Errorf("replayed checkout: %d %s", a.code, a.raw)
		}
		// The subscription ends: no plan, canceled, and a revocation is published.
		if a := post(deleted, stripeSig(testNow, deleted, stripeSecret)); a.code != 200 {
			t.Fatalf("deleted: %d %s", a.code, a.raw)
		}
		if a, _ := st.Account(t.Context(), "acct_42"); a.Plan != "" || a.Status != store.StatusCanceled {
			t.Errorf("after deletion: %+v", a)
		}
		if want := "plan acct_42 pro|revoke acct_42 "; strings.Join(rec.got, "|") != want {
			t.Errorf("published %q, want %q", rec.got, want)
		}
	})
}

func TestPolarWebhook(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		r := newRig(t, st, nil)
		st.UpdateAccount(t.Context(), store.Account{ID: "acct_42", Email: "ada@example.com", Status: store.StatusActive})
		body := testdata(t, "polar_subscription_active.json")
		if a := r.do(nil, "POST", "/v1/webhooks/polar", body, polarHeaders("msg_1", testNow, body, "whsec_wrongwrongwrongwrong")...); a.code != 400 {
			t.Errorf("forged: %d", a.code)
		}
		if a := r.do(nil, "POST", "/v1/webhooks/polar", body, polarHeaders("msg_1", testNow.Add(-time.Hour), body, polarSecret)...); a.code != 400 {
			t.Errorf("stale: %d", a.code)
		}
		if a, _ := st.Account(t.Context(), "acct_42"); a.Plan != "" {
			t.Errorf("refused deliveries changed the plan: %+v", a)
		}
		if a := r.do(nil, "POST", "/v1/webhooks/polar", body, polarHeaders("msg_1", testNow, body, polarSecret)...); a.code != 200 || a.body["status"] != "applied" {
			t.Fatalf("genuine: %d %s", a.code, a.raw)
		}
		if a, _ := st.Account(t.Context(), "acct_42"); a.Plan != "pro" || a.BillingProvider != "polar" {
			t.Errorf("after the delivery: %+v", a)
		}
	})
}

func TestWebhookNotLinked(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		r := newRig(t, st, nil)
		// A subscription event before its checkout: no email, a checkout reference; 503 so that
		// Stripe delivers it again.
		body := testdata(t, "stripe_subscription_updated.json")
		a := r.do(nil, "POST", "/v1/webhooks/stripe", body, "Stripe-Signature", stripeSig(testNow, body, stripeSecret))
		if a.code != 503 || a.h.Get("Retry-After") == "" {
			t.Errorf("unlinked: %d %s", a.code, a.raw)
		}
	})
}
