package billing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"
)

// testNow is the injected clock of every test: 2026-12-07T14:00:10Z.
var testNow = time.Unix(1796652010, 0)

const (
	stripeOld = "whsec_oldoldoldoldoldoldoldoldoldold"
	stripeNew = "whsec_newnewnewnewnewnewnewnewnewnew"
	// polarLegacy is shaped like the secrets Polar made before 2026-09-08 (whsec_ and 43
	// alphanumerics), keyed by their UTF-8 bytes.
	polarLegacy = "whsec_q2Yc7vK9mPz3RtW8xLbN4hJdF6gS1aEo0uTiCk5"
	// polarStandard is a Standard Webhooks secret, keyed by the base64 after whsec_.
	polarStandard = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// stripeSig signs with stripe-go's own signer, so the verifier is checked against Stripe's code.
func stripeSig(ts int64, body []byte, secret string) string {
	return fmt.Sprintf("t=%d,v1=%s", ts, hex.EncodeToString(webhook.ComputeSignature(time.Unix(ts, 0), body, secret)))
}

func polarSig(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func polarStandardKey(t *testing.T) []byte {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(polarStandard, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyStripe(t *testing.T) {
	body := []byte(`{"id":"evt_1","object":"event"}`)
	now := testNow.Unix()
	good := stripeSig(now, body, stripeNew)
	goodHex := strings.TrimPrefix(good, fmt.Sprintf("t=%d,v1=", now))
	tests := []struct {
		name    string
		header  string
		body    []byte
		secrets []string
		want    error
	}{
		{"valid", good, body, []string{stripeNew}, nil},
		{"rotation: signed with the new secret", good, body, []string{stripeOld, stripeNew}, nil},
		{"rotation: Stripe sends both signatures", stripeSig(now, body, stripeOld) + ",v1=" + goodHex, body, []string{stripeNew}, nil},
		{"bogus v1 before a good one", fmt.Sprintf("t=%d,v1=00ff,v1=zz,v1=%s", now, goodHex), body, []string{stripeNew}, nil},
		{"edge of tolerance, past", stripeSig(now-300, body, stripeNew), body, []string{stripeNew}, nil},
		{"edge of tolerance, future", stripeSig(now+300, body, stripeNew), body, []string{stripeNew}, nil},
		{"spaces after commas", fmt.Sprintf("t=%d, v1=%s", now, goodHex), body, []string{stripeNew}, nil},
		{"wrong secret", good, body, []string{stripeOld}, ErrSignature},
		{"no secret configured", good, body, nil, ErrSignature},
		{"body changed", good, []byte(`{"id":"evt_2","object":"event"}`), []string{stripeNew}, ErrSignature},
		{"timestamp moved forward", fmt.Sprintf("t=%d,v1=%s", now+1, goodHex), body, []string{stripeNew}, ErrSignature},
		{"no header", "", body, []string{stripeNew}, ErrSignature},
		{"only v0", fmt.Sprintf("t=%d,v0=%s", now, goodHex), body, []string{stripeNew}, ErrSignature},
		{"signature truncated", good[:len(good)-2], body, []string{stripeNew}, ErrSignature},
		{"stale", stripeSig(now-301, body, stripeNew), body, []string{stripeNew}, ErrStale},
		{"from the future", stripeSig(now+301, body, stripeNew), body, []string{stripeNew}, ErrStale},
		{"replayed a day later", stripeSig(now-86400, body, stripeNew), body, []string{stripeNew}, ErrStale},
		{"no timestamp", "v1=" + goodHex, body, []string{stripeNew}, ErrMalformed},
		{"timestamp not a number", "t=abc,v1=" + goodHex, body, []string{stripeNew}, ErrMalformed},
		{"negative timestamp", "t=-5,v1=" + goodHex, body, []string{stripeNew}, ErrMalformed},
		{"two timestamps", fmt.Sprintf("t=%d,t=%d,v1=%s", now, now, goodHex), body, []string{stripeNew}, ErrMalformed},
		{"element without =", good + ",junk", body, []string{stripeNew}, ErrMalformed},
		{"header too long", good + strings.Repeat(",v1=00", 1000), body, []string{stripeNew}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verifyStripe(tt.header, tt.body, stripeKeys(tt.secrets), DefaultTolerance, testNow)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("verifyStripe: got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyPolar(t *testing.T) {
	body := []byte(`{"type":"subscription.active","data":{}}`)
	now := testNow.Unix()
	const id = "msg_2b0d5a1e"
	std := polarStandardKey(t)
	legacy := []byte(polarLegacy)
	good := polarSig(std, id, now, body)
	tests := []struct {
		name      string
		id, ts    string
		signature string
		secrets   []string
		want      error
	}{
		{"standard secret", id, strconv.FormatInt(now, 10), good, []string{polarStandard}, nil},
		{"legacy secret keyed by its bytes", id, strconv.FormatInt(now, 10), polarSig(legacy, id, now, body), []string{polarLegacy}, nil},
		{"rotation: second secret", id, strconv.FormatInt(now, 10), good, []string{polarLegacy, polarStandard}, nil},
		{"several signatures, one good", id, strconv.FormatInt(now, 10), "v1,AAAA v1a,xyz " + good + " v2,abc", []string{polarStandard}, nil},
		{"edge of tolerance", id, strconv.FormatInt(now-300, 10), polarSig(std, id, now-300, body), []string{polarStandard}, nil},
		{"wrong secret", id, strconv.FormatInt(now, 10), good, []string{polarLegacy}, ErrSignature},
		{"no secret configured", id, strconv.FormatInt(now, 10), good, nil, ErrSignature},
		{"id changed", "msg_other", strconv.FormatInt(now, 10), good, []string{polarStandard}, ErrSignature},
		{"timestamp changed", id, strconv.FormatInt(now+1, 10), good, []string{polarStandard}, ErrSignature},
		{"no signature", id, strconv.FormatInt(now, 10), "", []string{polarStandard}, ErrSignature},
		{"only v1a", id, strconv.FormatInt(now, 10), "v1a," + strings.TrimPrefix(good, "v1,"), []string{polarStandard}, ErrSignature},
		{"signature without version", id, strconv.FormatInt(now, 10), strings.TrimPrefix(good, "v1,"), []string{polarStandard}, ErrSignature},
		{"stale", id, strconv.FormatInt(now-301, 10), polarSig(std, id, now-301, body), []string{polarStandard}, ErrStale},
		{"from the future", id, strconv.FormatInt(now+301, 10), polarSig(std, id, now+301, body), []string{polarStandard}, ErrStale},
		{"no id", "", strconv.FormatInt(now, 10), good, []string{polarStandard}, ErrMalformed},
		{"id with a space", "msg 1", strconv.FormatInt(now, 10), good, []string{polarStandard}, ErrMalformed},
		{"no timestamp", id, "", good, []string{polarStandard}, ErrMalformed},
		{"timestamp in milliseconds past 12 digits", id, strconv.FormatInt(now*1000, 10), good, []string{polarStandard}, ErrMalformed},
		{"timestamp with a sign", id, "+" + strconv.FormatInt(now, 10), good, []string{polarStandard}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verifyPolar(tt.id, tt.ts, tt.signature, body, polarKeys(tt.secrets), DefaultTolerance, testNow)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("verifyPolar: got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestPolarKnownAnswer checks the Standard Webhooks signature against the example the
// specification's libraries test with, so that the HMAC input is byte for byte theirs.
func TestPolarKnownAnswer(t *testing.T) {
	body := []byte(`{"test": 2432232314}`)
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	now := time.Unix(1614265330, 0)
	if got := polarSig(polarStandardKey(t), "msg_p5jXN8AQM9LWM0D4loKWxJek", now.Unix(), body); got != want {
		t.Fatalf("signature: got %s, want %s", got, want)
	}
	if _, err := verifyPolar("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", want, body, polarKeys([]string{polarStandard}), DefaultTolerance, now); err != nil {
		t.Fatalf("verifyPolar: %v", err)
	}
}

func TestBodyCap(t *testing.T) {
	w := NewWebhooks(Config{StripeSecrets: []string{stripeNew}, PolarSecrets: []string{polarStandard}, Now: func() time.Time { return testNow }})
	big := []byte(`{"pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`)
	h := http.Header{"Stripe-Signature": {stripeSig(testNow.Unix(), big, stripeNew)}}
	if _, _, err := w.Stripe(h, strings.NewReader(string(big))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("stripe: got %v, want ErrTooLarge", err)
	}
	ph := http.Header{}
	ph.Set("webhook-id", "msg_1")
	ph.Set("webhook-timestamp", strconv.FormatInt(testNow.Unix(), 10))
	ph.Set("webhook-signature", polarSig(polarStandardKey(t), "msg_1", testNow.Unix(), big))
	if _, _, err := w.Polar(ph, strings.NewReader(string(big))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("polar: got %v, want ErrTooLarge", err)
	}
}
