package accounts

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/codingplan/codingplan/backend/internal/billing"
)

// stripeAPI is a local server that answers POST /v1/checkout/sessions as Stripe does (form
// in, JSON out) and hands each request's form to the test.
func stripeAPI(t *testing.T) (*httptest.Server, <-chan url.Values) {
	t.Helper()
	forms := make(chan url.Values, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/checkout/sessions" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"type":"invalid_request_error","message":"Unrecognized request URL"}}`)
			return
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("form: %v", err)
		}
		forms <- r.PostForm
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_test")
		io.WriteString(w, `{"id":"cs_test_a1","object":"checkout.session","mode":"subscription","status":"open","url":"https://checkout.stripe.com/c/pay/cs_test_a1"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, forms
}

func TestCheckout(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		api, forms := stripeAPI(t)
		cfg := billing.Config{
			Plans: testPlans, StripeAPIBase: api.URL, StripeKey: "sk_test_123",
			SuccessURL: "https://accounts.example/billing/done", CancelURL: "https://accounts.example/billing",
			PolarCheckoutURL: "https://buy.polar.sh/polar_cl_T3stL1nk",
		}
		r := newRig(t, st, func(o *Options) { o.Checkout = billing.NewCheckout(cfg, nil) })
		c := r.client()
		if a := r.do(c, "POST", "/v1/checkout", map[string]string{"plan": "max"}); a.code != 401 {
			t.Errorf("signed out: got %d %s, want 401", a.code, a.raw)
		}
		r.signIn(c)
		stripeURL := "https://checkout.stripe.com/c/pay/cs_test_a1"
		polarURL := "https://buy.polar.sh/polar_cl_T3stL1nk?customer_email=ada%40example.com&reference_id=acct_42"

		a := r.do(c, "POST", "/v1/checkout", map[string]string{"plan": "max"})
		if a.code != 200 || a.body["url"] != stripeURL {
			t.Fatalf("stripe: got %d %s", a.code, a.raw)
		}
		want := url.Values{
			"mode":                    {"subscription"},
			"line_items[0][price]":    {"price_1Team"},
			"line_items[0][quantity]": {"1"},
			"customer_email":          {"ada@example.com"},
			"success_url":             {"https://accounts.example/billing/done"},
			"cancel_url":              {"https://accounts.example/billing"},
			"client_reference_id":     {"acct_42"},
			"metadata[account_id]":    {"acct_42"},
			"metadata[price]":         {"price_1Team"},
			"subscription_data[metadata][account_id]": {"acct_42"},
		}
		if got := <-forms; !reflect.DeepEqual(got, want) {
			t.Errorf("Stripe's form:\n got %v\nwant %v", got, want)
		}

		// A form post without JavaScript follows a 303; "pro" has a Stripe price and a
		// Polar product id: the Stripe price is the one sent.
		noRedirect := &http.Client{Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		a = r.do(noRedirect, "POST", "/v1/checkout", "plan=pro&provider=stripe")
		if a.code != http.StatusSeeOther || a.h.Get("Location") != stripeURL {
			t.Errorf("form post: got %d Location %q, want 303 to %s", a.code, a.h.Get("Location"), stripeURL)
		}
		if got := (<-forms).Get("line_items[0][price]"); got != "price_1Pro" {
			t.Errorf("pro's price: got %q, want price_1Pro", got)
		}

		a = r.do(c, "POST", "/v1/checkout", map[string]string{"plan": "pro", "provider": "polar"})
		if a.code != 200 || a.body["url"] != polarURL {
			t.Errorf("polar: got %d %s, want url %s", a.code, a.raw, polarURL)
		}

		for _, tt := range []struct {
			body     any
			code     int
			err, msg string
		}{
			{map[string]string{"plan": "gold"}, 400, "unknown_plan", "plans on sale: max, pro"},
			{map[string]string{}, 400, "unknown_plan", "plans on sale"},
			{map[string]string{"plan": "max", "provider": "paypal"}, 400, "invalid_provider", "provider must be"},
			{`plan=max&provider=%00`, 400, "invalid_provider", ""},
			{[]byte("not json"), 400, "invalid_request", ""},
		} {
			a := r.do(c, "POST", "/v1/checkout", tt.body)
			if a.code != tt.code || a.body["error"] != tt.err || !strings.Contains(fmt.Sprint(a.body["message"], a.body["url"]), tt.msg) {
				t.Errorf("%v: got %d %s, want %d %s %q", tt.body, a.code, a.raw, tt.code, tt.err, tt.msg)
			}
		}
		if a := r.do(c, "POST", "/v1/checkout", map[string]string{"plan": "max"}, "Sec-Fetch-Site", "cross-site"); a.code != 403 {
			t.Errorf("cross-site: got %d, want 403", a.code)
		}
		if n := len(forms); n != 0 {
			t.Errorf("refused checkouts reached Stripe: %d requests", n)
		}
	})
}

func TestCheckoutNotConfigured(t *testing.T) {
	api, forms := stripeAPI(t)
	stripeOnly := billing.Config{Plans: testPlans, StripeAPIBase: api.URL, StripeKey: "sk_test_123",
		SuccessURL: "https://a.example/done", CancelURL: "https://a.example/"}
	polarOnly := billing.Config{Plans: testPlans, PolarCheckoutURL: "https://buy.polar.sh/polar_cl_T3stL1nk"}
	for _, tt := range []struct {
		name     string
		cfg      *billing.Config
		body     map[string]string
		code     int
		err, msg string
	}{
		{"none", nil, map[string]string{"plan": "pro"}, 501, "not_implemented", "checkout is not configured"},
		{"empty", &billing.Config{Plans: testPlans}, map[string]string{"plan": "pro"}, 501, "not_implemented", "polar_checkout_url"},
		{"polar asked", &stripeOnly, map[string]string{"plan": "pro", "provider": "polar"}, 501, "not_implemented", "polar checkout is not configured"},
		{"stripe asked", &polarOnly, map[string]string{"plan": "pro", "provider": "stripe"}, 501, "not_implemented", "stripe checkout is not configured"},
		{"polar by default", &polarOnly, map[string]string{"plan": "pro"}, 200, "", "buy.polar.sh"},
		{"plan without a price", &billing.Config{Plans: billing.PlanMap{"price_1Pro": "pro", "prod_Lite": "lite"},
			StripeAPIBase: api.URL, StripeKey: "sk_test_123", SuccessURL: "https://a.example/done", CancelURL: "https://a.example/"},
			map[string]string{"plan": "lite"}, 400, "unknown_plan", `plan "lite" has no Stripe price`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dialects(t, func(t *testing.T, st full, _ string) {
				r := newRig(t, st, func(o *Options) {
					if tt.cfg != nil {
						o.Checkout = billing.NewCheckout(*tt.cfg, nil)
						o.Plans = tt.cfg.Plans
					}
				})
				c := r.client()
				r.signIn(c)
				a := r.do(c, "POST", "/v1/checkout", tt.body)
				if a.code != tt.code || a.body["error"] != nil && a.body["error"] != tt.err || !strings.Contains(fmt.Sprint(a.body["message"], a.body["url"]), tt.msg) {
					t.Errorf("got %d %s, want %d %s %q", a.code, a.raw, tt.code, tt.err, tt.msg)
				}
			})
		})
	}
	if n := len(forms); n != 0 {
		t.Errorf("refused checkouts reached Stripe: %d requests", n)
	}
}

// TestCheckoutRateLimit: checkouts take from the signed-in account's bucket, whatever the
// client: past the burst, 429 with Retry-After, and Stripe is not asked.
func TestCheckoutRateLimit(t *testing.T) {
	dialects(t, func(t *testing.T, st full, _ string) {
		api, forms := stripeAPI(t)
		cfg := billing.Config{Plans: testPlans, StripeAPIBase: api.URL, StripeKey: "sk_test_123",
			SuccessURL: "https://a.example/done", CancelURL: "https://a.example/"}
		r := newRig(t, st, func(o *Options) {
			o.Checkout = billing.NewCheckout(cfg, nil)
			o.Settings.Rate.AccountPerMinute, o.Settings.Rate.AccountBurst = 1, 3
		})
		c := r.client()
		r.signIn(c)
		for i := range 3 {
			if a := r.do(c, "POST", "/v1/checkout", map[string]string{"plan": "max"}); a.code != 200 {
				t.Fatalf("checkout %d: %d %s", i+1, a.code, a.raw)
			}
			<-forms
		}
		other := r.client()
		r.signIn(other)
		if a := r.do(other, "POST", "/v1/checkout", map[string]string{"plan": "max"}); a.code != 429 || a.h.Get("Retry-After") == "" {
			t.Errorf("checkout 4 (another client, same account): %d %q, want 429 with Retry-After", a.code, a.h.Get("Retry-After"))
		}
		if n := len(forms); n != 0 {
			t.Errorf("a limited checkout reached Stripe: %d requests", n)
		}
	})
}
