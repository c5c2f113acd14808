package billing

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// Ids of the testdata payloads.
const (
	stripeCustomer = "cus_RZ8aKq1JjU3lfd"
	stripeSub      = "sub_1QcHk82eZvKYlo2CvQ5mT9bN"
	polarCustomer  = "3b2e4a10-8f5c-4d1e-b7a2-9c0d1e2f3a4b"
	polarSub       = "7c4f1f0e-1d3a-4b6e-9a51-2f5d0c8b6a11"
	polarProduct   = "e1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8"
	polarPrice     = "a9b8c7d6-e5f4-4a3b-9c2d-1e0f9a8b7c6d"
)

var testPlans = PlanMap{"price_1Pro": "pro", polarProduct: "pro", "price_1Team": "team"}

func testWebhooks() *Webhooks {
	return NewWebhooks(Config{
		StripeSecrets: []string{stripeOld, stripeNew},
		PolarSecrets:  []string{polarLegacy, polarStandard},
		Plans:         testPlans,
		Now:           func() time.Time { return testNow },
	})
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stripeDelivery(body []byte) http.Header {
	return http.Header{"Stripe-Signature": {stripeSig(testNow.Unix(), body, stripeNew)}}
}

func polarDelivery(t testing.TB, id string, body []byte) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(testNow.Unix(), 10))
	h.Set("webhook-signature", polarSig([]byte(polarLegacy), id, testNow.Unix(), body))
	return h
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestStripeEvents(t *testing.T) {
	tests := []struct {
		file   string
		want   Change
		wantOK bool
	}{
		{"stripe_checkout_session_completed.json", Change{
			Provider: Stripe, EventID: "evt_1QcHkA2eZvKYlo2CmQ8Xc3pA", EventType: "checkout.session.completed",
			EventTime: time.Unix(1796651998, 0), CustomerID: stripeCustomer, SubscriptionID: stripeSub,
			Email: "ada@example.com", AccountRef: "acct_42", Prices: []string{"price_1Pro"}, Plan: "pro", Status: StatusActive,
		}, true},
		{"stripe_subscription_updated.json", Change{
			Provider: Stripe, EventID: "evt_1QcHkB2eZvKYlo2CaB7dE9fG", EventType: "customer.subscription.updated",
			EventTime: time.Unix(1796652000, 0), CustomerID: stripeCustomer, SubscriptionID: stripeSub,
			AccountRef: "acct_42", Prices: []string{"price_1Pro", "prod_RZ8Pro"}, Plan: "pro", Status: StatusActive,
		}, true},
		{"stripe_subscription_deleted.json", Change{
			Provider: Stripe, EventID: "evt_1QdZzz2eZvKYlo2CdEl3t3dX", EventType: "customer.subscription.deleted",
			EventTime: time.Unix(1796652600, 0), CustomerID: stripeCustomer, SubscriptionID: stripeSub,
			AccountRef: "acct_42", Prices: []string{"price_1Pro", "prod_RZ8Pro"}, Plan: "pro", Status: StatusCanceled,
		}, true},
		{"stripe_invoice_payment_failed.json", Change{
			Provider: Stripe, EventID: "evt_1QfFa12eZvKYlo2CpAy3nt0F", EventType: "invoice.payment_failed",
			EventTime: time.Unix(1796652005, 0), CustomerID: stripeCustomer, SubscriptionID: stripeSub,
			Email: "ada@example.com", AccountRef: "acct_42", Status: StatusPastDue,
		}, true},
		{"stripe_customer_created.json", Change{}, false},
	}
	w := testWebhooks()
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := readTestdata(t, tt.file)
			got, ok, err := w.Stripe(stripeDelivery(body), bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v %+v\nwant %v %+v", ok, got, tt.wantOK, tt.want)
			}
		})
	}
}

// TestStripeShapes covers the variants the testdata files do not: older API versions, modes
// and billing reasons that change nothing, and bodies that are signed but unreadable.
func TestStripeShapes(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Change
		wantOK  bool
		wantErr error
	}{
		{"invoice before 2025-03-31 names its subscription at the top",
			`{"id":"evt_1","object":"event","type":"invoice.payment_failed","created":1796652000,"data":{"object":{"object":"invoice","customer":"cus_1","customer_email":"a@b.c","billing_reason":"subscription_cycle","subscription":"sub_1"}}}`,
			Change{Provider: Stripe, EventID: "evt_1", EventType: "invoice.payment_failed", EventTime: time.Unix(1796652000, 0),
				CustomerID: "cus_1", SubscriptionID: "sub_1", Email: "a@b.c", Status: StatusPastDue}, true, nil},
		{"first invoice failing changes nothing",
			`{"id":"evt_1","object":"event","type":"invoice.payment_failed","created":1796652000,"data":{"object":{"customer":"cus_1","billing_reason":"subscription_create","subscription":"sub_1"}}}`,
			Change{}, false, nil},
		{"one-off invoice changes nothing",
			`{"id":"evt_1","object":"event","type":"invoice.payment_failed","created":1796652000,"data":{"object":{"customer":"cus_1","billing_reason":"manual","subscription":null,"parent":null}}}`,
			Change{}, false, nil},
		{"payment-mode checkout changes nothing",
			`{"id":"evt_1","object":"event","type":"checkout.session.completed","created":1796652000,"data":{"object":{"mode":"payment","customer":"cus_1"}}}`,
			Change{}, false, nil},
		{"checkout paid asynchronously is incomplete",
			`{"id":"evt_1","object":"event","type":"checkout.session.completed","created":1796652000,"data":{"object":{"mode":"subscription","customer":"cus_1","subscription":"sub_1","payment_status":"unpaid","customer_email":null,"client_reference_id":null,"metadata":{"account_id":"acct_9"}}}}`,
			Change{Provider: Stripe, EventID: "evt_1", EventType: "checkout.session.completed", EventTime: time.Unix(1796652000, 0),
				CustomerID: "cus_1", SubscriptionID: "sub_1", AccountRef: "acct_9", Status: StatusIncomplete}, true, nil},
		{"team price and expanded product",
			`{"id":"evt_1","object":"event","type":"customer.subscription.resumed","created":1796652000,"data":{"object":{"id":"sub_1","customer":{"id":"cus_1"},"status":"active","items":{"data":[{"price":{"id":"price_other","product":{"id":"prod_x"}}},{"price":{"id":"price_1Team","product":"prod_t"}}]}}}}`,
			Change{Provider: Stripe, EventID: "evt_1", EventType: "customer.subscription.resumed", EventTime: time.Unix(1796652000, 0),
				CustomerID: "cus_1", SubscriptionID: "sub_1", Prices: []string{"price_other", "prod_x", "price_1Team", "prod_t"}, Plan: "team", Status: StatusActive}, true, nil},
		{"not JSON", `{"id":`, Change{}, false, ErrMalformed},
		{"not an event", `{"id":"sub_1","object":"subscription","type":"x","created":1}`, Change{}, false, ErrMalformed},
		{"no created", `{"id":"evt_1","object":"event","type":"customer.subscription.updated","data":{"object":{}}}`, Change{}, false, ErrMalformed},
		{"subscription without a customer", `{"id":"evt_1","object":"event","type":"customer.subscription.updated","created":1,"data":{"object":{"id":"sub_1","status":"active"}}}`, Change{}, false, ErrMalformed},
		{"customer of the wrong type", `{"id":"evt_1","object":"event","type":"customer.subscription.updated","created":1,"data":{"object":{"id":"sub_1","customer":7}}}`, Change{}, false, ErrMalformed},
	}
	w := testWebhooks()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			got, ok, err := w.Stripe(stripeDelivery(body), bytes.NewReader(body))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("error: got %v, want %v", err, tt.wantErr)
			}
			if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v %+v\nwant %v %+v", ok, got, tt.wantOK, tt.want)
			}
		})
	}
}

func TestPolarEvents(t *testing.T) {
	tests := []struct {
		file    string
		body    string // instead of file
		want    Change
		wantOK  bool
		wantErr error
	}{
		{file: "polar_subscription_active.json", want: Change{
			Provider: Polar, EventID: "msg_1", EventType: "subscription.active", EventTime: utc("2026-12-07T14:00:00.301Z"),
			CustomerID: polarCustomer, SubscriptionID: polarSub, Email: "ada@example.com", AccountRef: "acct_42",
			Prices: []string{polarPrice, polarProduct}, Plan: "pro", Status: StatusActive,
		}, wantOK: true},
		{file: "polar_subscription_revoked.json", want: Change{
			Provider: Polar, EventID: "msg_1", EventType: "subscription.revoked", EventTime: utc("2026-12-07T14:10:00.105Z"),
			CustomerID: polarCustomer, SubscriptionID: polarSub, Email: "ada@example.com", AccountRef: "acct_42",
			Prices: []string{polarPrice, polarProduct}, Plan: "pro", Status: StatusCanceled,
		}, wantOK: true},
		{file: "polar_order_paid.json"},
		{body: `{"type":"subscription.created","timestamp":"2026-12-07T14:00:00Z","data":{"id":"s1","status":"incomplete","created_at":"2026-12-07T13:59:00Z","modified_at":null,"customer_id":"c1","product":{"id":"p9"},"customer":{"email":"b@c.d","external_id":"acct_7"},"metadata":{"reference_id":17}}}`,
			want: Change{Provider: Polar, EventID: "msg_1", EventType: "subscription.created", EventTime: utc("2026-12-07T13:59:00Z"),
				CustomerID: "c1", SubscriptionID: "s1", Email: "b@c.d", AccountRef: "acct_7", Prices: []string{"p9"}, Status: StatusIncomplete},
			wantOK: true},
		{body: `{"type":"subscription.updated","data":{"id":"s1","status":"active","customer_id":"c1"}}`, wantErr: ErrMalformed},
		{body: `{"type":"subscription.updated","timestamp":"2026-12-07T14:00:00Z","data":{"id":"s1","customer_id":"c1"}}`, wantErr: ErrMalformed},
		{body: `{"type":"subscription.updated","timestamp":"yesterday","data":{}}`, wantErr: ErrMalformed},
		{body: `{"data":{}}`, wantErr: ErrMalformed},
		{body: `[]`, wantErr: ErrMalformed},
	}
	w := testWebhooks()
	for _, tt := range tests {
		name := tt.file
		if name == "" {
			name = tt.body
		}
		t.Run(name, func(t *testing.T) {
			body := []byte(tt.body)
			if tt.file != "" {
				body = readTestdata(t, tt.file)
			}
			got, ok, err := w.Polar(polarDelivery(t, "msg_1", body), bytes.NewReader(body))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("error: got %v, want %v", err, tt.wantErr)
			}
			if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v %+v\nwant %v %+v", ok, got, tt.wantOK, tt.want)
			}
		})
	}
}

// TestRefusedChangesNothing: a forged, stale or unsigned delivery of a real event is refused
// before anything is read from it.
func TestRefusedChangesNothing(t *testing.T) {
	w := testWebhooks()
	body := readTestdata(t, "stripe_subscription_deleted.json")
	forged := http.Header{"Stripe-Signature": {stripeSig(testNow.Unix(), body, "whsec_guess")}}
	stale := http.Header{"Stripe-Signature": {stripeSig(testNow.Unix()-3600, body, stripeNew)}}
	for name, h := range map[string]http.Header{"forged": forged, "stale": stale, "unsigned": {}} {
		if c, ok, err := w.Stripe(h, bytes.NewReader(body)); err == nil || ok || !reflect.DeepEqual(c, Change{}) {
			t.Errorf("stripe %s: got %+v %v %v, want a refusal", name, c, ok, err)
		}
	}
	pbody := readTestdata(t, "polar_subscription_revoked.json")
	pforged := polarDelivery(t, "msg_1", pbody)
	pforged.Set("webhook-signature", polarSig([]byte("whsec_guess"), "msg_1", testNow.Unix(), pbody))
	for name, h := range map[string]http.Header{"forged": pforged, "unsigned": {"Webhook-Id": {"msg_1"}}} {
		if c, ok, err := w.Polar(h, bytes.NewReader(pbody)); err == nil || ok || !reflect.DeepEqual(c, Change{}) {
			t.Errorf("polar %s: got %+v %v %v, want a refusal", name, c, ok, err)
		}
	}
}
