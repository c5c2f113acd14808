package billing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header size caps, checked before any parsing.
const (
	maxSignatureHeader = 4 << 10
	maxWebhookID       = 256
)

// stripeKeys turns Stripe endpoint secrets into HMAC keys: Stripe keys the HMAC with the whole
// secret string, whsec_ prefix included.
func stripeKeys(secrets []string) [][]byte {
	var keys [][]byte
	for _, s := range secrets {
		if s != "" {
			keys = append(keys, []byte(s))
		}
	}
	return keys
}

// verifyStripe checks a Stripe-Signature header, t=<unix>,v1=<hex>[,v1=<hex>...], against the
// body: HMAC-SHA256 over "<t>.<body>" with each key, compared in constant time with every v1;
// then the timestamp against now within tolerance, either way. It returns the signed time.
//
// stripe-go's webhook package does the same HMAC, but reads time.Now itself (no clock to inject),
// lets a timestamp in the future through, and checks one secret per call; keeping one parser
// here also means the timestamp that is checked is the one that was signed.
func verifyStripe(header string, body []byte, keys [][]byte, tolerance time.Duration, now time.Time) (time.Time, error) {
	if header == "" {
		return time.Time{}, fmt.Errorf("%w: no Stripe-Signature header", ErrSignature)
	}
	if len(header) > maxSignatureHeader {
		return time.Time{}, fmt.Errorf("%w: Stripe-Signature header too long", ErrMalformed)
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return time.Time{}, fmt.Errorf("%w: Stripe-Signature element without '='", ErrMalformed)
		}
		switch k {
		case "t":
			if ts != "" {
				return time.Time{}, fmt.Errorf("%w: Stripe-Signature has two timestamps", ErrMalformed)
			}
			ts = v
		case "v1":
			// A v1 that is not a SHA-256 in hex cannot match; skip it as Stripe's libraries do.
			if sig, err := hex.DecodeString(v); err == nil && len(sig) == sha256.Size {
				sigs = append(sigs, sig)
			}
		}
		// Other schemes (v0, the test-mode scheme) are never trusted.
	}
	t, err := parseUnix(ts)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: Stripe-Signature timestamp: %v", ErrMalformed, err)
	}
	if len(sigs) == 0 {
		return time.Time{}, fmt.Errorf("%w: no v1 signature", ErrSignature)
	}
	if !anyMatch(keys, sigs, ts, body) {
		return time.Time{}, fmt.Errorf("%w: no v1 signature matches a configured secret", ErrSignature)
	}
	if err := inTolerance(t, now, tolerance); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// polarKeys turns Polar endpoint secrets into HMAC keys. Polar signs with Standard Webhooks
// but, for endpoints whose secret was made before 2026-09-08, keys the HMAC with the UTF-8
// bytes of the whole secret string (its SDKs base64-encode the secret before handing it to a
// Standard Webhooks library, which decodes it again); newer secrets follow the specification:
// the key is the base64 after whsec_. The dashboard shows both kinds as whsec_..., so each
// secret yields both keys when the second decodes; a forger needs the secret either way.
func polarKeys(secrets []string) [][]byte {
	var keys [][]byte
	for _, s := range secrets {
		if s == "" {
			continue
		}
		keys = append(keys, []byte(s))
		if k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_")); err == nil && len(k) > 0 {
			keys = append(keys, k)
		}
	}
	return keys
}

// verifyPolar checks Standard Webhooks headers against the body: HMAC-SHA256 over
// "<id>.<timestamp>.<body>" with each key, base64, compared in constant time with every
// "v1,<base64>" of the space-separated webhook-signature; then the timestamp against now within
// tolerance, either way. It returns the webhook id (the event's id for deduplication) and the
// signed time.
//
// The specification's Go library keeps its tolerance in a package variable, reads time.Now,
// takes one secret and is published without a version tag, so these 50 lines are written here.
func verifyPolar(id, timestamp, signature string, body []byte, keys [][]byte, tolerance time.Duration, now time.Time) (time.Time, error) {
	if signature == "" {
		return time.Time{}, fmt.Errorf("%w: no webhook-signature header", ErrSignature)
	}
	if id == "" || len(id) > maxWebhookID || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return time.Time{}, fmt.Errorf("%w: webhook-id missing or not printable ASCII", ErrMalformed)
	}
	if len(signature) > maxSignatureHeader {
		return time.Time{}, fmt.Errorf("%w: webhook-signature header too long", ErrMalformed)
	}
	t, err := parseUnix(timestamp)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: webhook-timestamp: %v", ErrMalformed, err)
	}
	var sigs [][]byte
	for _, vs := range strings.Fields(signature) {
		v, s, ok := strings.Cut(vs, ",")
		if !ok || v != "v1" {
			continue // v1a (asymmetric) and unknown versions are not used here
		}
		if sig, err := base64.StdEncoding.DecodeString(s); err == nil && len(sig) == sha256.Size {
			sigs = append(sigs, sig)
		}
	}
	if len(sigs) == 0 {
		return time.Time{}, fmt.Errorf("%w: no v1 signature", ErrSignature)
	}
	if !anyMatch(keys, sigs, id+"."+timestamp, body) {
		return time.Time{}, fmt.Errorf("%w: no v1 signature matches a configured secret", ErrSignature)
	}
	if err := inTolerance(t, now, tolerance); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// anyMatch reports whether HMAC-SHA256(key, prefix + "." + body) equals any of sigs for any key.
// Every comparison runs, so the time taken does not say which key or signature matched.
func anyMatch(keys, sigs [][]byte, prefix string, body []byte) bool {
	ok := false
	for _, k := range keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(prefix))
		m.Write([]byte{'.'})
		m.Write(body)
		want := m.Sum(nil)
		for _, s := range sigs {
			if hmac.Equal(want, s) {
				ok = true
			}
		}
	}
	return ok
}

// parseUnix reads decimal Unix seconds: digits only, no sign, no spaces.
func parseUnix(s string) (time.Time, error) {
	if s == "" || len(s) > 12 || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return time.Time{}, fmt.Errorf("not Unix seconds")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(n, 0), nil
}

func inTolerance(t, now time.Time, tolerance time.Duration) error {
	d := now.Sub(t)
	if d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s from now", ErrStale, d.Round(time.Second))
	}
	return nil
}
