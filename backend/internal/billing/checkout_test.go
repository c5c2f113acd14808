package billing

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v82"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// stripeAPI is a local server that answers POST /v1/checkout/sessions as Stripe does (form in,
// JSON out, Stripe's error object for errors) and hands each request's form to the test.
func stripeAPI(t *testing.T, status int, answer string) (*httptest.Server, <-chan *http.Request) {
	t.Helper()
	reqs := make(chan *http.Request, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/checkout/sessions" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"type":"invalid_request_error","message":"Unrecognized request URL"}}`)
			return
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("form: %v", err)
		}
		reqs <- r
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_test")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, reqs
}

func testCheckout(base string) *Checkout {
	return NewCheckout(Config{
		Plans: testPlans, StripeAPIBase: base, StripeKey: "sk_test_123",
		SuccessURL: "https://accounts.example/billing/done?session={CHECKOUT_SESSION_ID}",
		CancelURL:  "https://accounts.example/billing",
	}, nil)
}

func TestStripeCheckout(t *testing.T) {
	const session = `{"id":"cs_test_a1","object":"checkout.session","mode":"subscription","status":"open","url":"https://checkout.stripe.com/c/pay/cs_test_a1"}`
	tests := []struct {
		name string
		acct store.Account
		want url.Values
	}{
		{"new customer", store.Account{ID: "acct_42", Email: "ada@example.com"}, url.Values{
			"mode":                    {"subscription"},
			"line_items[0][price]":    {"price_1Team"},
			"line_items[0][quantity]": {"1"},
			"customer_email":          {"ada@example.com"},
			"success_url":             {"https://accounts.example/billing/done?session={CHECKOUT_SESSION_ID}"},
			"cancel_url":              {"https://accounts.example/billing"},
			"client_reference_id":     {"acct_42"},
			"metadata[account_id]":    {"acct_42"},
			"metadata[price]":         {"price_1Team"},
			"subscription_data[metadata][account_id]": {"acct_42"},
		}},
		{"known Stripe customer", store.Account{ID: "acct_42", Email: "ada@example.com", BillingProvider: Stripe, CustomerID: "cus_1"}, url.Values{
			"mode":                    {"subscription"},
			"line_items[0][price]":    {"price_1Team"},
			"line_items[0][quantity]": {"1"},
			"customer":                {"cus_1"},
			"success_url":             {"https://accounts.example/billing/done?session={CHECKOUT_SESSION_ID}"},
			"cancel_url":              {"https://accounts.example/billing"},
			"client_reference_id":     {"acct_42"},
			"metadata[account_id]":    {"acct_42"},
			"metadata[price]":         {"price_1Team"},
			"subscription_data[metadata][account_id]": {"acct_42"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, reqs := stripeAPI(t, http.StatusOK, session)
			got, err := testCheckout(srv.URL).Stripe(t.Context(), tt.acct, "price_1Team")
			if err != nil {
				t.Fatal(err)
			}
			if want := "https://checkout.stripe.com/c/pay/cs_test_a1"; got != want {
				t.Errorf("url: got %q, want %q", got, want)
			}
			r := <-reqs
			if !reflect.DeepEqual(r.PostForm, tt.want) {
				t.Errorf("form:\n got %v\nwant %v", r.PostForm, tt.want)
			}
			for h, want := range map[string]string{
				"Authorization":  "Bearer sk_test_123",
				"Content-Type":   "application/x-www-form-urlencoded",
				"Stripe-Version": stripe.APIVersion,
			} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("%s: got %q, want %q", h, got, want)
				}
			}
			if r.Header.Get("Idempotency-Key") == "" {
				t.Error("no Idempotency-Key")
			}
		})
	}
}

func TestStripeCheckoutErrors(t *testing.T) {
	srv, reqs := stripeAPI(t, http.StatusBadRequest,
		`{"error":{"code":"resource_missing","doc_url":"https://stripe.com/docs/error-codes/resource-missing","message":"No such price: 'price_1Team'","param":"line_items[0][price]","type":"invalid_request_error"}}`)
	acct := store.Account{ID: "acct_42", Email: "ada@example.com"}
	_, err := testCheckout(srv.URL).Stripe(t.Context(), acct, "price_1Team")
	var se *stripe.Error
	if !errors.As(err, &se) || se.Code != stripe.ErrorCodeResourceMissing || !strings.Contains(err.Error(), "No such price") {
		t.Errorf("Stripe's error: got %v", err)
	}
	if n := len(reqs); n != 1 {
		t.Errorf("%d requests for a 400, want 1", n)
	}
	if _, err := testCheckout(srv.URL).Stripe(t.Context(), acct, "price_unknown"); !errors.Is(err, ErrUnknownPrice) {
		t.Errorf("unknown price: got %v, want ErrUnknownPrice", err)
	}
	for name, cfg := range map[string]Config{
		"no key":         {Plans: testPlans, StripeAPIBase: srv.URL, SuccessURL: "https://a/", CancelURL: "https://a/"},
		"no success url": {Plans: testPlans, StripeAPIBase: srv.URL, StripeKey: "sk_test_123", CancelURL: "https://a/"},
	} {
		if _, err := NewCheckout(cfg, nil).Stripe(t.Context(), acct, "price_1Team"); !errors.Is(err, ErrNotConfigured) {
			t.Errorf("%s: got %v, want ErrNotConfigured", name, err)
		}
	}
	if n := len(reqs); n != 1 {
		t.Errorf("refused checkouts reached Stripe: %d requests", n)
	}
}

func TestPolarCheckout(t *testing.T) {
	tests := []struct {
		link    string
		acct    store.Account
		want    string
		wantErr error
	}{
		{"https://buy.polar.sh/polar_cl_T3stL1nk", store.Account{ID: "acct_42", Email: "ada+code@example.com"},
			"https://buy.polar.sh/polar_cl_T3stL1nk?customer_email=ada%2Bcode%40example.com&reference_id=acct_42", nil},
		{"https://buy.polar.sh/polar_cl_T3stL1nk?utm_source=app", store.Account{ID: "acct_42"},
			"https://buy.polar.sh/polar_cl_T3stL1nk?reference_id=acct_42&utm_source=app", nil},
		{"", store.Account{ID: "acct_42"}, "", ErrNotConfigured},
		{"buy.polar.sh/polar_cl_x", store.Account{ID: "acct_42"}, "", ErrNotConfigured},
	}
	for _, tt := range tests {
		t.Run(tt.link, func(t *testing.T) {
			got, err := NewCheckout(Config{PolarCheckoutURL: tt.link}, nil).Polar(tt.acct)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("error: got %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
