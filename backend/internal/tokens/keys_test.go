package tokens

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/auth"
)

func kidOf(t *testing.T, token string) string {
	t.Helper()
	data, err := jsonSegment(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
	}
	json.Unmarshal(data, &h)
	if h.Alg != "EdDSA" {
		t.Errorf("alg %q, want EdDSA", h.Alg)
	}
	return h.Kid
}

func jwksKids(t *testing.T, iss *Issuer) []string {
	t.Helper()
	doc, err := iss.JWKS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.ParseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for k := range keys {
		kids = append(kids, k)
	}
	return kids
}

// TestRotate: a new key is published at once and signs after RotateDelay, so that the backend's
// verifier (which refetches on an unknown kid at most every 30 s) knows it before it meets a
// token it signed; tokens of the key before keep verifying until they expire, and Prune removes
// that key only after.
func TestRotate(t *testing.T) {
	eachStore(t, func(t *testing.T, st testStore) {
		ctx := t.Context()
		clk := newClock()
		iss := newIssuer(t, st, clk)
		v := verifier(t, iss.Handler(), clk, 0) // fetches the JWKS now; refetches at most every 30 s
		acct := newAccount(t, st, "ada@example.com", "pro")

		// A second issuer on the same store (a restart, or another replica) signs with the same key.
		if a, b := iss.current().kid, newIssuer(t, st, clk).current().kid; a != b {
			t.Fatalf("second issuer signs with %s, first with %s", b, a)
		}
		mint := func() string {
			t.Helper()
			tok, _, err := iss.Mint(ctx, acct, "s1")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatalf("the backend's verifier refuses a token of kid %s: %v", kidOf(t, tok), err)
			}
			return tok
		}
		old := mint()
		oldKid := kidOf(t, old)

		clk.Add(time.Second)
		kid, err := iss.Rotate(ctx)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		if kid == oldKid {
			t.Fatal("Rotate kept the kid")
		}
		if got := len(jwksKids(t, iss)); got != 2 {
			t.Errorf("JWKS has %d keys after rotation, want 2", got)
		}
		if got := kidOf(t, mint()); got != oldKid {
			t.Errorf("right after rotation the token's kid is %s, want the old %s", got, oldKid)
		}
		clk.Add(DefaultRotateDelay - time.Second)
		lastOld := mint()
		if kidOf(t, lastOld) != oldKid {
			t.Errorf("just before RotateDelay the token's kid is %s, want the old %s", kidOf(t, lastOld), oldKid)
		}
		clk.Add(time.Second)
		if got := kidOf(t, mint()); got != kid {
			t.Errorf("after RotateDelay the token's kid is %s, want the new %s", got, kid)
		}
		for name, tk := range map[string]string{"first": old, "last": lastOld} {
			if _, err := v.Verify(ctx, tk); err != nil {
				t.Errorf("%s token of the old key after rotation: %v", name, err)
			}
		}

		// Not pruned while a token of the old key may live.
		clk.Add(DefaultAccessTTL)
		if gone, err := iss.Prune(ctx); err != nil || len(gone) != 0 {
			t.Errorf("Prune at the old key's last exp: %v, %v; want nothing", gone, err)
		}
		if _, err := v.Verify(ctx, lastOld); err != nil {
			t.Errorf("last token of the old key at its exp (within the leeway): %v", err)
		}
		clk.Add(keyLeeway)
		if _, err := v.Verify(ctx, lastOld); !errors.Is(err, auth.ErrExpired) {
			t.Errorf("last token of the old key after the leeway: %v, want ErrExpired", err)
		}
		gone, err := iss.Prune(ctx)
		if err != nil || len(gone) != 1 || gone[0] != oldKid {
			t.Errorf("Prune after the leeway: %v, %v; want [%s]", gone, err, oldKid)
		}
		if kids := jwksKids(t, iss); len(kids) != 1 || kids[0] != kid {
			t.Errorf("JWKS %v after prune, want [%s]", kids, kid)
		}

		// Another process's rotation (the admin CLI) takes over too.
		cli := newIssuer(t, st, clk)
		kid3, err := cli.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		clk.Add(DefaultRotateDelay)
		if got := kidOf(t, mint()); got != kid3 {
			t.Errorf("after a rotation elsewhere: kid %s, want %s", got, kid3)
		}
	})
}

func TestRotateAtOnce(t *testing.T) {
	st := openSQLite(t)
	clk := newClock()
	iss, err := New(st, Config{VerificationURI: verifyURI, Now: clk.Now, RotateDelay: -1}, discard())
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second) // keys made at the same microsecond have no order
	kid, err := iss.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := iss.Mint(t.Context(), newAccount(t, st, "a@example.com", "pro"), "s")
	if err != nil || kidOf(t, tok) != kid {
		t.Errorf("negative RotateDelay: kid %s, %v; want the new %s", kidOf(t, tok), err, kid)
	}
}

func TestNewChecksConfig(t *testing.T) {
	st := openSQLite(t)
	for _, cfg := range []Config{
		{},
		{VerificationURI: "/device"},
		{VerificationURI: "ftp://x/device"},
		{VerificationURI: verifyURI, PollInterval: 1500 * time.Millisecond},
		{VerificationURI: verifyURI, AccessTTL: -time.Second},
	} {
		if _, err := New(st, cfg, nil); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
