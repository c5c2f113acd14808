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

// TestRotate: after a rotation new tokens carry the new kid, tokens signed before keep verifying
// with the backend's verifier until they expire, and Prune removes the old key only after that.
func TestRotate(t *testing.T) {
	eachStore(t, func(t *testing.T, st testStore) {
		ctx := t.Context()
		clk := newClock()
		iss := newIssuer(t, st, clk)
		v := verifier(t, iss.Handler(), clk)
		acct := newAccount(t, st, "ada@example.com", "pro")

		// A second issuer on the same store (a restart, or another replica) signs with the same key.
		if a, b := iss.current().kid, newIssuer(t, st, clk).current().kid; a != b {
			t.Fatalf("second issuer signs with %s, first with %s", b, a)
		}

		old, _, err := iss.Mint(ctx, acct, "s1")
		if err != nil {
			t.Fatal(err)
		}
		oldKid := kidOf(t, old)
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
		clk.Add(time.Minute)
		tok, _, err := iss.Mint(ctx, acct, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if kidOf(t, tok) != kid {
			t.Errorf("new token kid %s, want %s", kidOf(t, tok), kid)
		}
		for name, tk := range map[string]string{"old": old, "new": tok} {
			if _, err := v.Verify(ctx, tk); err != nil {
				t.Errorf("%s token after rotation: %v", name, err)
			}
		}

		// Not pruned while an old token may live.
		if gone, err := iss.Prune(ctx); err != nil || len(gone) != 0 {
			t.Errorf("Prune right after rotation: %v, %v; want nothing", gone, err)
		}
		clk.Add(DefaultAccessTTL)
		if _, err := v.Verify(ctx, old); !errors.Is(err, auth.ErrExpired) {
			t.Errorf("old token after its exp: %v, want ErrExpired", err)
		}
		clk.Add(keyLeeway)
		gone, err := iss.Prune(ctx)
		if err != nil || len(gone) != 1 || gone[0] != oldKid {
			t.Errorf("Prune after the leeway: %v, %v; want [%s]", gone, err, oldKid)
		}
		if kids := jwksKids(t, iss); len(kids) != 1 || kids[0] != kid {
			t.Errorf("JWKS %v after prune, want [%s]", kids, kid)
		}

		// Another process's rotation (the admin CLI) takes over within keyReload.
		cli := newIssuer(t, st, clk)
		kid3, err := cli.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		clk.Add(keyReload)
		tok, _, err = iss.Mint(ctx, acct, "s1")
		if err != nil || kidOf(t, tok) != kid3 {
			t.Errorf("after a rotation elsewhere: kid %s, %v; want %s", kidOf(t, tok), err, kid3)
		}
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("token of the key rotated elsewhere: %v", err)
		}
	})
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
