package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

const (
	maxJWKSBytes = 1 << 20
	fetchTimeout = 10 * time.Second
)

var (
	errUnknownKey = errors.New("unknown key id")
	errBadKID     = errors.New("missing or malformed key id")
)

// keySet holds the verification keys by kid. It reloads them when a token names a kid it does
// not know (at most once per refetch interval) and when the set it holds is older than maxAge
// (a revoked key then stops verifying); a reload that fails keeps the keys it had.
type keySet struct {
	source  string // file path, or URL when url is set
	url     *url.URL
	client  *http.Client
	refetch time.Duration
	maxAge  time.Duration // <= 0: no reload by age
	now     func() time.Time
	log     *slog.Logger

	mu     sync.RWMutex
	keys   map[string]ed25519.PublicKey
	loaded time.Time // when keys was read

	fetchMu   sync.Mutex // serializes loads; held while one runs
	lastFetch time.Time  // when the last load was tried
}

func newKeySet(source string, refetch, maxAge time.Duration, now func() time.Time, log *slog.Logger) (*keySet, error) {
	if source == "" {
		return nil, errors.New("auth: no JWKS source configured")
	}
	ks := &keySet{source: source, refetch: refetch, maxAge: maxAge, now: now, log: log}
	if strings.HasPrefix(source, "https://") || strings.HasPrefix(source, "http://") {
		u, err := url.Parse(source)
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS URL: %w", err)
		}
		if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			return nil, errors.New("auth: a JWKS URL must use https (http is allowed for loopback hosts only)")
		}
		ks.url = u
		ks.client = &http.Client{Timeout: fetchTimeout}
	}
	return ks, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// lookup returns the key for kid, reloading the set when kid is unknown and the last load is
// older than the refetch interval.
func (ks *keySet) lookup(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if !validKID(kid) {
		return nil, errBadKID
	}
	ks.refreshIfOld(ctx)
	if k := ks.get(kid); k != nil {
		return k, nil
	}
	ks.fetchMu.Lock()
	defer ks.fetchMu.Unlock()
	// Another caller may have loaded it while this one waited.
	if k := ks.get(kid); k != nil {
		return k, nil
	}
	if ks.now().Sub(ks.lastFetch) < ks.refetch {
		return nil, errUnknownKey
	}
	if err := ks.loadLocked(ctx); err != nil {
		ks.log.Warn("jwks reload failed", "err", err)
		return nil, errUnknownKey
	}
	if k := ks.get(kid); k != nil {
		return k, nil
	}
	return nil, errUnknownKey
}

// refreshIfOld reloads the set when it is older than maxAge, trying at most once per refetch
// interval while the source fails.
func (ks *keySet) refreshIfOld(ctx context.Context) {
	if ks.maxAge <= 0 {
		return
	}
	ks.mu.RLock()
	old := ks.now().Sub(ks.loaded) >= ks.maxAge
	ks.mu.RUnlock()
	if !old {
		return
	}
	ks.fetchMu.Lock()
	defer ks.fetchMu.Unlock()
	ks.mu.RLock()
	old = ks.now().Sub(ks.loaded) >= ks.maxAge
	ks.mu.RUnlock()
	if !old || ks.now().Sub(ks.lastFetch) < ks.refetch {
		return // loaded meanwhile, or failing: keep what is held until the next try
	}
	if err := ks.loadLocked(ctx); err != nil {
		ks.log.Warn("jwks refresh failed, keeping the keys loaded before", "err", err)
	}
}

func (ks *keySet) get(kid string) ed25519.PublicKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.keys[kid]
}

// load reads the set now.
func (ks *keySet) load(ctx context.Context) error {
	ks.fetchMu.Lock()
	defer ks.fetchMu.Unlock()
	return ks.loadLocked(ctx)
}

func (ks *keySet) loadLocked(ctx context.Context) error {
	ks.lastFetch = ks.now()
	data, err := ks.read(ctx)
	if err != nil {
		return err
	}
	keys, err := ParseJWKS(data)
	if err != nil {
		return err
	}
	ks.mu.Lock()
	ks.keys, ks.loaded = keys, ks.now()
	ks.mu.Unlock()
	ks.log.Debug("jwks loaded", "keys", len(keys))
	return nil
}

func (ks *keySet) read(ctx context.Context) ([]byte, error) {
	if ks.url == nil {
		f, err := os.Open(ks.source)
		if err != nil {
			return nil, fmt.Errorf("auth: read JWKS: %w", err)
		}
		defer f.Close()
		return readCapped(f)
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: fetch JWKS: HTTP %d", resp.StatusCode)
	}
	return readCapped(resp.Body)
}

func readCapped(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("auth: read JWKS: %w", err)
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("auth: JWKS document is over %d bytes", maxJWKSBytes)
	}
	return data, nil
}

// JWK is one key of a JWKS document, as far as this package uses it.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// JWKS is a JWKS document.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// ParseJWKS returns the Ed25519 signing keys of a JWKS document by kid. Keys of other types,
// for other uses or algorithms, or without a well-formed kid are skipped; a document with no
// usable key is an error.
func ParseJWKS(data []byte) (map[string]ed25519.PublicKey, error) {
	var doc JWKS
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("auth: JWKS document is not valid JSON: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(doc.Keys))
	for _, k := range doc.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || !validKID(k.Kid) {
			continue
		}
		if (k.Alg != "" && k.Alg != Alg) || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			continue
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: JWKS document has no usable Ed25519 key with a kid")
	}
	return keys, nil
}

// PublicJWK describes pub with key id kid.
func PublicJWK(kid string, pub ed25519.PublicKey) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Alg: Alg, Use: "sig"}
}

// validKID accepts only short ids of letters, digits, '-', '_' and '.': a kid is a map key,
// never a path or URL, and odd ones are rejected before they can cause a refetch.
func validKID(kid string) bool {
	if kid == "" || len(kid) > maxKIDBytes {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}
