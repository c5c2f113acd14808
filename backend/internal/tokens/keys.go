package tokens

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/store"
)

const (
	// keyReload is how old the signing keys held in memory may get before Mint reads them
	// again, so that a rotation made by another process (the admin CLI) takes over soon.
	keyReload = 30 * time.Second
	// keyLeeway is how long past AccessTTL a superseded key stays published: the verifiers' clock
	// leeway (auth.DefaultLeeway), plus keyReload during which another process may still sign
	// with it, plus margin.
	keyLeeway = auth.DefaultLeeway + keyReload + time.Minute
	// jwksReload is how old the keys held may be when JWKS answers without reading them again.
	jwksReload = time.Second
)

type signer struct {
	kid string
	key ed25519.PrivateKey
}

// claims are what an access token says: what auth.Claims reads, plus jti and sid.
type claims struct {
	Plan string `json:"plan"`
	// SID is the sign-in the token came from: the refresh family's id, or the API key's id.
	SID string `json:"sid,omitempty"`
	jwt.RegisteredClaims
}

// Key life: a key is published in the JWKS as soon as it is added, and signs once it is
// RotateDelay old, so that every verifier can have fetched it before it meets a token it signed
// (a backend node refetches on an unknown kid at most every 30 s). From then on the key before it
// is superseded: it signs no more, and stays published until every token it signed has expired
// (AccessTTL plus keyLeeway). Prune deletes it after that. A key retired in the store by other
// means signs no more from its retirement and is published for as long after it.

func usable(k store.SigningKey) bool { return len(k.Private) == ed25519.SeedSize }

// signs returns the key that signs at now: the newest key old enough, or, when no key is old
// enough yet (the first key, just created), the oldest.
func (i *Issuer) signs(keys []store.SigningKey, now time.Time) (store.SigningKey, bool) {
	var best store.SigningKey
	found := false
	for _, k := range keys { // oldest first
		if !usable(k) || !k.Retired.IsZero() {
			continue
		}
		if !found || !now.Before(k.Created.Add(i.cfg.RotateDelay)) {
			best, found = k, true
		}
	}
	return best, found
}

// end returns when a key stopped (or will stop) signing: its retirement, or the time the next
// key became ready. Zero when it has not been superseded.
func (i *Issuer) end(keys []store.SigningKey, k store.SigningKey) time.Time {
	if !k.Retired.IsZero() {
		return k.Retired
	}
	var end time.Time
	for _, n := range keys {
		if !usable(n) || !n.Retired.IsZero() || !n.Created.After(k.Created) {
			continue
		}
		if at := n.Created.Add(i.cfg.RotateDelay); end.IsZero() || at.Before(end) {
			end = at
		}
	}
	return end
}

// published reports whether a key belongs in the JWKS at now: it signs or will, or a token it
// signed may still be valid.
func (i *Issuer) published(keys []store.SigningKey, k store.SigningKey, now time.Time) bool {
	end := i.end(keys, k)
	return usable(k) && (end.IsZero() || now.Before(end.Add(i.cfg.AccessTTL+keyLeeway)))
}

// reload reads the signing keys from the store.
func (i *Issuer) reload(ctx context.Context) error {
	keys, err := i.st.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("tokens: load signing keys: %w", err)
	}
	i.mu.Lock()
	i.keys, i.loaded = keys, i.now()
	i.mu.Unlock()
	return nil
}

func (i *Issuer) held() []store.SigningKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys
}

// current returns the key that signs now among the keys held ("" kid when none).
func (i *Issuer) current() signer {
	k, ok := i.signs(i.held(), i.now())
	if !ok {
		return signer{}
	}
	return signer{kid: k.ID, key: ed25519.NewKeyFromSeed(k.Private)}
}

// signerFor returns the key to sign with, reading the keys again when they are older than
// keyReload (a failed read keeps the keys held).
func (i *Issuer) signerFor(ctx context.Context) (signer, error) {
	i.mu.Lock()
	stale := i.now().Sub(i.loaded) >= keyReload
	i.mu.Unlock()
	if stale {
		if err := i.reload(ctx); err != nil {
			i.log.Warn("signing keys reload failed, signing with the keys held", "err", err)
			i.mu.Lock()
			i.loaded = i.now() // try again after keyReload, not on every token
			i.mu.Unlock()
		}
	}
	s := i.current()
	if s.kid == "" {
		// Every key was retired by someone else and none added: make one.
		kid, err := i.addKey(ctx)
		if err != nil {
			return signer{}, err
		}
		i.log.Warn("no signing key left; created one", "kid", kid)
		s = i.current()
	}
	return s, nil
}

// addKey stores a new signing key.
func (i *Issuer) addKey(ctx context.Context) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("tokens: generate key: %w", err)
	}
	kid := auth.Thumbprint(pub)
	if err := i.st.AddSigningKey(ctx, store.SigningKey{ID: kid, Private: priv.Seed(), Created: i.now()}); err != nil {
		return "", fmt.Errorf("tokens: add signing key: %w", err)
	}
	if err := i.reload(ctx); err != nil {
		return "", err
	}
	return kid, nil
}

// Rotate adds a new signing key. It is in the JWKS at once and signs from RotateDelay on (every
// issuer sharing the store switches to it within another 30 s); the key it supersedes stays in
// the JWKS until every token it signed has expired (AccessTTL plus a leeway), and Prune then
// deletes it.
func (i *Issuer) Rotate(ctx context.Context) (kid string, err error) {
	if kid, err = i.addKey(ctx); err != nil {
		return "", err
	}
	i.log.Info("signing key added", "kid", kid, "signs_from", i.now().Add(i.cfg.RotateDelay))
	return kid, nil
}

// Prune deletes the keys that no valid token can name any more, and returns their ids.
func (i *Issuer) Prune(ctx context.Context) ([]string, error) {
	keys, err := i.st.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("tokens: prune signing keys: %w", err)
	}
	now := i.now()
	var gone []string
	for _, k := range keys {
		if i.published(keys, k, now) || !usable(k) {
			continue
		}
		if err := i.st.DeleteSigningKey(ctx, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return gone, fmt.Errorf("tokens: prune signing keys: %w", err)
		}
		gone = append(gone, k.ID)
	}
	if len(gone) > 0 {
		i.log.Info("superseded signing keys deleted", "kids", gone)
	}
	return gone, i.reload(ctx)
}

// JWKS returns the key set document: every key that signs, will sign, or may still have valid
// tokens. It reads the keys from the store when the keys held are older than a second, so that a
// rotation made by another process shows at once; when the store is unavailable it answers from
// the keys held in memory.
func (i *Issuer) JWKS(ctx context.Context) ([]byte, error) {
	i.mu.Lock()
	fresh := i.now().Sub(i.loaded) < jwksReload
	i.mu.Unlock()
	if !fresh {
		if err := i.reload(ctx); err != nil {
			i.log.Warn("jwks: reading signing keys failed, serving the keys held", "err", err)
		}
	}
	keys := i.held()
	now := i.now()
	doc := auth.JWKS{Keys: []auth.JWK{}}
	for _, k := range keys {
		if !i.published(keys, k, now) {
			continue
		}
		pub := ed25519.NewKeyFromSeed(k.Private).Public().(ed25519.PublicKey)
		doc.Keys = append(doc.Keys, auth.PublicJWK(k.ID, pub))
	}
	if len(doc.Keys) == 0 {
		return nil, errors.New("tokens: no signing key to publish")
	}
	return json.Marshal(doc)
}

// entitled reports whether the account may have tokens.
func entitled(a store.Account) bool {
	return (a.Status == store.StatusActive || a.Status == store.StatusPastDue) && a.Plan != ""
}

// Mint signs an access token for the account, from the sign-in sid (a refresh family's id or an
// API key's id), valid for AccessTTL. ErrNotEntitled when the account is neither active nor past
// due, or has no plan.
func (i *Issuer) Mint(ctx context.Context, a store.Account, sid string) (token string, exp time.Time, err error) {
	if a.ID == "" || !entitled(a) {
		return "", time.Time{}, ErrNotEntitled
	}
	s, err := i.signerFor(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	now := i.now().Truncate(time.Second)
	exp = now.Add(i.cfg.AccessTTL)
	token, err = auth.Sign(s.key, s.kid, &claims{
		Plan: a.Plan,
		SID:  sid,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   a.ID,
			Issuer:    i.cfg.Issuer,
			Audience:  jwt.ClaimStrings{i.cfg.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        store.NewID(),
		},
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("tokens: %w", err)
	}
	return token, exp, nil
}
