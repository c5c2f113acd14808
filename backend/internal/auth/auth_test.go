package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type testKey struct {
	priv ed25519.PrivateKey
	kid  string
}

func newTestKey(t *testing.T) testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, kid: Thumbprint(priv.Public().(ed25519.PublicKey))}
}

func writeJWKSFile(t *testing.T, dir string, keys ...testKey) string {
	t.Helper()
	var doc JWKS
	for _, k := range keys {
		doc.Keys = append(doc.Keys, PublicJWK(k.kid, k.priv.Public().(ed25519.PublicKey)))
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func goodClaims() *Claims {
	return &Claims{
		Plan: "pro",
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   "user-1",
			Issuer:    DefaultIssuer,
			Audience:  jwt.ClaimStrings{DefaultAudience},
			IssuedAt:  jwt.NewNumericDate(t0.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
		},
	}
}

func sign(t *testing.T, k testKey, c jwt.Claims) string {
	t.Helper()
	s, err := Sign(k.priv, k.kid, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(v any) string {
	data, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(data)
}

func newVerifier(t *testing.T, jwks string, now *time.Time) *Verifier {
	t.Helper()
	v, err := NewVerifier(context.Background(), Config{JWKS: jwks, Now: func() time.Time { return *now }}, discard())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerify(t *testing.T) {
	key := newTestKey(t)
	other := newTestKey(t)
	now := t0
	v := newVerifier(t, writeJWKSFile(t, t.TempDir(), key), &now)
	good := sign(t, key, goodClaims())
	parts := strings.Split(good, ".")

	with := func(edit func(c *Claims)) string {
		c := goodClaims()
		edit(c)
		return sign(t, key, c)
	}
	hs256 := func() string {
		// The classic alg confusion: HMAC keyed with the public key's bytes.
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, goodClaims())
		tok.Header["kid"] = key.kid
		s, err := tok.SignedString([]byte(key.priv.Public().(ed25519.PublicKey)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	withKID := func(kid string) string {
		s, err := Sign(key.priv, kid, goodClaims())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tamper := func() string {
		c := goodClaims()
		c.Plan = "max"
		return parts[0] + "." + b64(c) + "." + parts[2]
	}

	tests := []struct {
		name  string
		token string
		want  error // nil, ErrInvalid or ErrExpired
	}{
		{"good", good, nil},
		{"empty", "", ErrInvalid},
		{"alg none", b64(map[string]string{"alg": "none", "typ": "JWT", "kid": key.kid}) + "." + parts[1] + ".", ErrInvalid},
		{"hs256 with public key", hs256(), ErrInvalid},
		{"expired", with(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(t0.Add(-time.Minute)) }), ErrExpired},
		{"expired within leeway", with(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(t0.Add(-10 * time.Second)) }), nil},
		{"not yet valid", with(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(t0.Add(time.Minute)) }), ErrInvalid},
		{"wrong issuer", with(func(c *Claims) { c.Issuer = "someone-else" }), ErrInvalid},
		{"no issuer", with(func(c *Claims) { c.Issuer = "" }), ErrInvalid},
		{"wrong audience", with(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other"} }), ErrInvalid},
		{"missing exp", with(func(c *Claims) { c.ExpiresAt = nil }), ErrInvalid},
		{"missing sub", with(func(c *Claims) { c.Subject = "" }), ErrInvalid},
		{"missing plan", with(func(c *Claims) { c.Plan = "" }), ErrInvalid},
		{"tampered payload", tamper(), ErrInvalid},
		{"tampered signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), ErrInvalid},
		{"signed by another key under our kid", func() string { s, _ := Sign(other.priv, key.kid, goodClaims()); return s }(), ErrInvalid},
		{"unknown kid", sign(t, other, goodClaims()), ErrInvalid},
		{"no kid", withKID(""), ErrInvalid},
		{"path-like kid", withKID("../../../etc/passwd"), ErrInvalid},
		{"url kid", withKID("https://evil.example/jwks"), ErrInvalid},
		{"two segments", parts[0] + "." + parts[1], ErrInvalid},
		{"many dots", strings.Repeat(".", 5000), ErrInvalid},
		{"1 MiB token", parts[0] + "." + strings.Repeat("A", 1<<20) + "." + parts[2], ErrInvalid},
		{"1 MiB header", strings.Repeat("A", 1<<20), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got, want := c.Subject+"/"+c.Plan, "user-1/pro"; got != want {
					t.Errorf("claims: got %s, want %s", got, want)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error: got %v, want %v", err, tt.want)
			}
			if tt.want == ErrInvalid && errors.Is(err, ErrExpired) {
				t.Errorf("error wraps both ErrInvalid and ErrExpired: %v", err)
			}
			if len(tt.token) > 40 && strings.Contains(err.Error(), tt.token[:40]) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

// TestVerifyHugeTokenIsFast checks a 1 MiB token is refused before any decoding.
func TestVerifyHugeTokenIsFast(t *testing.T) {
	key := newTestKey(t)
	now := t0
	v := newVerifier(t, writeJWKSFile(t, t.TempDir(), key), &now)
	huge := "eyJhbGciOiJFZERTQSJ9." + strings.Repeat("A", 1<<20) + ".c2ln"
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := v.Verify(context.Background(), huge); !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v", err)
		}
	})
	// The rejection allocates only its error, never a copy of the token.
	if allocs > 5 {
		t.Errorf("rejecting a 1 MiB token allocated %v times", allocs)
	}
}

// TestRefetchUnknownKID serves a JWKS over HTTP, rotates in a new key, and checks the verifier
// picks it up on the first unknown kid, but refetches at most once per interval.
func TestRefetchUnknownKID(t *testing.T) {
	oldKey, newKey, bogus := newTestKey(t), newTestKey(t), newTestKey(t)
	var doc atomic.Value
	doc.Store([]testKey{oldKey})
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		var d JWKS
		for _, k := range doc.Load().([]testKey) {
			d.Keys = append(d.Keys, PublicJWK(k.kid, k.priv.Public().(ed25519.PublicKey)))
		}
		_ = json.NewEncoder(w).Encode(d)
	}))
	defer srv.Close()

	now := t0
	v := newVerifier(t, srv.URL+"/jwks.json", &now)
	verify := func(k testKey) error {
		_, err := v.Verify(context.Background(), sign(t, k, goodClaims()))
		return err
	}
	steps := []struct {
		name        string
		advance     time.Duration
		key         testKey
		wantOK      bool
		wantFetches int32
	}{
		{"old key, no refetch", 0, oldKey, true, 1},
		{"unknown kid within the interval: no refetch", time.Second, newKey, false, 1},
		{"unknown kid after the interval: refetch, still unknown", DefaultRefetch, newKey, false, 2},
		{"rotated in, but within the interval again", 0, newKey, false, 2},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		err := verify(s.key)
		if (err == nil) != s.wantOK {
			t.Errorf("%s: Verify error %v, want ok=%v", s.name, err, s.wantOK)
		}
		if got := fetches.Load(); got != s.wantFetches {
			t.Errorf("%s: fetches got %d, want %d", s.name, got, s.wantFetches)
		}
	}
	doc.Store([]testKey{oldKey, newKey})
	// A storm of bogus kids after the interval causes one fetch in all.
	now = now.Add(DefaultRefetch)
	if err := verify(newKey); err != nil {
		t.Errorf("rotated key after the interval: %v", err)
	}
	for range 50 {
		if err := verify(bogus); !errors.Is(err, ErrInvalid) {
			t.Errorf("bogus kid: %v", err)
		}
	}
	if got, want := fetches.Load(), int32(3); got != want {
		t.Errorf("fetches after storm: got %d, want %d", got, want)
	}
}

func TestNewVerifierRejectsPlainHTTP(t *testing.T) {
	_, err := NewVerifier(context.Background(), Config{JWKS: "http://keys.example/jwks.json"}, discard())
	if err == nil {
		t.Fatal("plain http JWKS URL on a public host accepted")
	}
}

func TestParseJWKS(t *testing.T) {
	k := newTestKey(t)
	good := PublicJWK(k.kid, k.priv.Public().(ed25519.PublicKey))
	mod := func(f func(j *JWK)) JWK { j := good; f(&j); return j }
	tests := []struct {
		name string
		keys []JWK
		want int // usable keys; 0 means an error
	}{
		{"one good", []JWK{good}, 1},
		{"rsa skipped", []JWK{mod(func(j *JWK) { j.Kty = "RSA" }), good}, 1},
		{"wrong alg skipped", []JWK{mod(func(j *JWK) { j.Alg = "HS256" })}, 0},
		{"enc use skipped", []JWK{mod(func(j *JWK) { j.Use = "enc" })}, 0},
		{"no kid skipped", []JWK{mod(func(j *JWK) { j.Kid = "" })}, 0},
		{"path kid skipped", []JWK{mod(func(j *JWK) { j.Kid = "a/b" })}, 0},
		{"short x skipped", []JWK{mod(func(j *JWK) { j.X = "AAAA" })}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, _ := json.Marshal(JWKS{Keys: tt.keys})
			keys, err := ParseJWKS(data)
			if tt.want == 0 {
				if err == nil {
					t.Fatalf("got %d keys, want an error", len(keys))
				}
				return
			}
			if err != nil || len(keys) != tt.want {
				t.Fatalf("got %d keys, %v; want %d", len(keys), err, tt.want)
			}
		})
	}
}

func TestDevKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	key, created, err := LoadOrCreateDevKey(dir)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateDevKey: created=%v err=%v", created, err)
	}
	info, err := os.Stat(filepath.Join(dir, DevKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode: got %o, want 600", got)
	}
	again, created, err := LoadOrCreateDevKey(dir)
	if err != nil || created {
		t.Fatalf("second LoadOrCreateDevKey: created=%v err=%v", created, err)
	}
	if again.KID != key.KID || !again.Private.Equal(key.Private) {
		t.Error("second load returned a different key")
	}

	now := time.Now()
	token, err := key.Mint("dev", "pro", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, DevJWKSPath(dir), &now)
	c, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("Verify minted token: %v", err)
	}
	if c.Subject != "dev" || c.Plan != "pro" || !c.Expires().Equal(now.Add(time.Hour).Truncate(time.Second)) {
		t.Errorf("claims: got sub=%q plan=%q exp=%v", c.Subject, c.Plan, c.Expires())
	}
}

// TestMaxAgeRevokes checks a key removed from the JWKS stops verifying once the loaded set is
// older than MaxAge, without a restart, and that a source failing at that moment leaves the
// keys loaded before in use (retried once per refetch interval).
func TestMaxAgeRevokes(t *testing.T) {
	revoked, kept := newTestKey(t), newTestKey(t)
	var doc atomic.Value
	doc.Store([]testKey{revoked, kept})
	var fetches atomic.Int32
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if failing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var d JWKS
		for _, k := range doc.Load().([]testKey) {
			d.Keys = append(d.Keys, PublicJWK(k.kid, k.priv.Public().(ed25519.PublicKey)))
		}
		_ = json.NewEncoder(w).Encode(d)
	}))
	defer srv.Close()

	now := t0
	v, err := NewVerifier(context.Background(), Config{JWKS: srv.URL + "/jwks.json", MaxAge: time.Minute,
		Refetch: 30 * time.Second, Now: func() time.Time { return now }}, discard())
	if err != nil {
		t.Fatal(err)
	}
	verify := func(k testKey) error {
		_, err := v.Verify(context.Background(), sign(t, k, goodClaims()))
		return err
	}
	steps := []struct {
		name        string
		advance     time.Duration
		revoke      bool // the source drops the revoked key before this step
		fail        bool // the source answers 503 from this step on
		key         testKey
		wantOK      bool
		wantFetches int32
	}{
		{"both keys loaded", 0, false, false, revoked, true, 1},
		{"removed at the source, set still young", 59 * time.Second, true, false, revoked, true, 1},
		{"set older than max age: read again, key gone", time.Second, false, false, revoked, false, 2},
		{"the other key, no read", 0, false, false, kept, true, 2},
		{"old again, source down: the keys before stay", time.Minute, false, true, kept, true, 3},
		{"source still down: no read within the refetch interval", time.Second, false, true, kept, true, 3},
	}
	for _, s := range steps {
		if s.revoke {
			doc.Store([]testKey{kept})
		}
		failing.Store(s.fail)
		now = now.Add(s.advance)
		err := verify(s.key)
		if (err == nil) != s.wantOK {
			t.Errorf("%s: Verify error %v, want ok=%v", s.name, err, s.wantOK)
		}
		if got := fetches.Load(); got != s.wantFetches {
			t.Errorf("%s: fetches got %d, want %d", s.name, got, s.wantFetches)
		}
	}
}

// nonCanonical sets an unused low bit of a base64url segment's last character (RFC 4648 3.5):
// a lenient decoder reads the same bytes, a strict one refuses it. ok is false when the
// segment's length leaves no unused bits.
func nonCanonical(seg string) (string, bool) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(seg)%4 < 2 {
		return seg, false
	}
	i := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[i|1]), true
}

// signRaw signs the encoded header and payload as they are, bypassing jwt's encoder.
func signRaw(k testKey, header, payload string) string {
	sig := ed25519.Sign(k.priv, []byte(header+"."+payload))
	return header + "." + payload + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestRejectionReasons checks why a token is refused, not only that it is: a token that the
// parser's alg allow-list (WithValidMethods) or strict base64 (WithStrictDecoding) refuses
// would often still be refused later for another reason (an HMAC key type mismatch), which
// hides the loss of the first check. Each case here names the check that must catch it.
func TestRejectionReasons(t *testing.T) {
	key := newTestKey(t)
	now := t0
	v := newVerifier(t, writeJWKSFile(t, t.TempDir(), key), &now)
	good := sign(t, key, goodClaims())
	parts := strings.Split(good, ".")

	hs256 := func() string {
		// The classic alg confusion: HMAC keyed with the public key's bytes.
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, goodClaims())
		tok.Header["kid"] = key.kid
		s, err := tok.SignedString([]byte(key.priv.Public().(ed25519.PublicKey)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// A header and a payload whose encodings have unused bits, each spaced until they do; both
	// verify as they are (the control case below).
	header := `{"alg":"EdDSA","kid":"` + key.kid + `","typ":"JWT"}`
	for len(header)%3 == 0 {
		header += " "
	}
	payloadJSON, err := json.Marshal(goodClaims())
	if err != nil {
		t.Fatal(err)
	}
	for len(payloadJSON)%3 == 0 {
		payloadJSON = append(payloadJSON, ' ')
	}
	h, p := base64.RawURLEncoding.EncodeToString([]byte(header)), base64.RawURLEncoding.EncodeToString(payloadJSON)
	loose := func(seg string) string {
		s, ok := nonCanonical(seg)
		if !ok {
			t.Fatalf("segment %q has no unused bits", seg)
		}
		return s
	}
	badSig, _ := nonCanonical(parts[2]) // an Ed25519 signature always leaves 4 unused bits

	tests := []struct {
		name, token string
		want        error  // nil for a good token
		reason      string // in the error
	}{
		{"control: spaced header and payload", signRaw(key, h, p), nil, ""},
		{"hs256 with the public key", hs256(), ErrInvalid, "algorithm not allowed"},
		{"alg none", b64(map[string]string{"alg": "none", "typ": "JWT", "kid": key.kid}) + "." + parts[1] + ".", ErrInvalid, "algorithm not allowed"},
		{"signature with unused bits set", parts[0] + "." + parts[1] + "." + badSig, ErrInvalid, "malformed token"},
		{"header with unused bits set, signed", signRaw(key, loose(h), p), ErrInvalid, "malformed token"},
		{"payload with unused bits set, signed", signRaw(key, h, loose(p)), ErrInvalid, "malformed token"},
		{"tampered signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), ErrInvalid, "bad signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.HasSuffix(err.Error(), ": "+tt.reason) {
				t.Errorf("Verify error: got %v, want %v because of %q", err, tt.want, tt.reason)
			}
		})
	}
}
