package billing

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v82/webhook"
)

func seeds(f *testing.F, prefix string) [][]byte {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", prefix+"*.json"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no %s testdata: %v", prefix, err)
	}
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzStripe: with resign, the body is signed correctly so that the event parser is reached;
// without, the header is the fuzzer's, and anything accepted must carry a signature that
// stripe-go's own verifier accepts too.
func FuzzStripe(f *testing.F) {
	for _, b := range seeds(f, "stripe_") {
		f.Add(stripeSig(testNow.Unix(), b, stripeNew), b, true)
		f.Add(stripeSig(testNow.Unix(), b, stripeNew), b, false)
		f.Add("t=1796652010,v1=00", b, false)
	}
	w := testWebhooks()
	f.Fuzz(func(t *testing.T, header string, body []byte, resign bool) {
		if resign {
			header = stripeSig(testNow.Unix(), body, stripeNew)
		}
		c, ok, err := w.Stripe(http.Header{"Stripe-Signature": {header}}, bytes.NewReader(body))
		if err != nil {
			if ok || c.EventID != "" {
				t.Fatalf("refused but returned %v %+v", ok, c)
			}
			return
		}
		if !resign {
			if webhook.ValidatePayloadIgnoringTolerance(body, header, stripeNew) != nil &&
				webhook.ValidatePayloadIgnoringTolerance(body, header, stripeOld) != nil {
				t.Fatalf("accepted a body stripe-go finds unsigned: %q", header)
			}
		}
		if ok && (c.Provider != Stripe || c.EventID == "" || c.CustomerID == "" || c.EventTime.IsZero()) {
			t.Fatalf("incomplete change accepted: %+v", c)
		}
	})
}

// FuzzPolar: as FuzzStripe, for Standard Webhooks; without resign, anything accepted must
// carry, among its signatures, the HMAC of its id, timestamp and body under a configured key.
func FuzzPolar(f *testing.F) {
	ts := strconv.FormatInt(testNow.Unix(), 10)
	for _, b := range seeds(f, "polar_") {
		f.Add("msg_1", ts, polarSig([]byte(polarLegacy), "msg_1", testNow.Unix(), b), b, true)
		f.Add("msg_1", ts, polarSig([]byte(polarLegacy), "msg_1", testNow.Unix(), b), b, false)
		f.Add("msg_1", ts, "v1,AAAA v1a,BBBB", b, false)
	}
	w := testWebhooks()
	keys := polarKeys([]string{polarLegacy, polarStandard})
	f.Fuzz(func(t *testing.T, id, timestamp, signature string, body []byte, resign bool) {
		if resign {
			n, err := strconv.ParseInt(timestamp, 10, 64)
			if err != nil {
				n = testNow.Unix()
			}
			signature = polarSig([]byte(polarLegacy), id, n, body)
		}
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", timestamp)
		h.Set("webhook-signature", signature)
		c, ok, err := w.Polar(h, bytes.NewReader(body))
		if err != nil {
			if ok || c.EventID != "" {
				t.Fatalf("refused but returned %v %+v", ok, c)
			}
			return
		}
		n, perr := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
		if perr != nil {
			t.Fatalf("accepted timestamp %q", timestamp)
		}
		signed := false
		for _, k := range keys {
			if strings.Contains(" "+h.Get("webhook-signature")+" ", " "+polarSig(k, h.Get("webhook-id"), n, body)+" ") {
				signed = true
			}
		}
		if !signed {
			t.Fatalf("accepted an unsigned body: id %q ts %q sig %q", id, timestamp, signature)
		}
		if ok && (c.Provider != Polar || c.EventID != h.Get("webhook-id") || c.CustomerID == "" || c.EventTime.IsZero()) {
			t.Fatalf("incomplete change accepted: %+v", c)
		}
	})
}
