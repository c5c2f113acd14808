package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Files of the development key in a state dir.
const (
	DevKeyFile  = "dev-signing-key.pem" // PKCS #8 PEM, mode 0600
	DevJWKSFile = "jwks.json"           // its public half, for --jwks
)

// DevKey is a development signing key: an Ed25519 key kept in the state dir, good for local
// use only.
type DevKey struct {
	Private ed25519.PrivateKey
	KID     string
	// Issuer and Audience go into minted tokens; DefaultIssuer and DefaultAudience when empty.
	Issuer, Audience string
}

// DevJWKSPath is where LoadOrCreateDevKey writes the JWKS document of the dev key.
func DevJWKSPath(stateDir string) string { return filepath.Join(stateDir, DevJWKSFile) }

// LoadOrCreateDevKey loads the dev key from stateDir, creating it (and jwks.json beside it)
// when it does not exist. created reports whether this call made it.
func LoadOrCreateDevKey(stateDir string) (key *DevKey, created bool, err error) {
	key, err = LoadDevKey(stateDir)
	if err == nil {
		// Rewrite jwks.json if it went missing; it is derived data.
		if _, statErr := os.Stat(DevJWKSPath(stateDir)); errors.Is(statErr, fs.ErrNotExist) {
			err = writeJWKS(stateDir, key)
		}
		return key, false, err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("auth: create state dir: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("auth: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, false, fmt.Errorf("auth: encode key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	// O_EXCL: when two processes race, one wins and the other loads the winner's key.
	f, err := os.OpenFile(filepath.Join(stateDir, DevKeyFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		key, err = LoadDevKey(stateDir)
		return key, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("auth: write key: %w", err)
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, false, fmt.Errorf("auth: write key: %w", werr)
	}
	key = &DevKey{Private: priv, KID: Thumbprint(priv.Public().(ed25519.PublicKey))}
	if err := writeJWKS(stateDir, key); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// LoadDevKey loads the dev key from stateDir. A missing key is an error wrapping
// fs.ErrNotExist.
func LoadDevKey(stateDir string) (*DevKey, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, DevKeyFile))
	if err != nil {
		return nil, fmt.Errorf("auth: read dev key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("auth: dev key file is not a PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: parse dev key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("auth: dev key is not an Ed25519 key")
	}
	return &DevKey{Private: priv, KID: Thumbprint(priv.Public().(ed25519.PublicKey))}, nil
}

func writeJWKS(stateDir string, key *DevKey) error {
	doc := JWKS{Keys: []JWK{PublicJWK(key.KID, key.Private.Public().(ed25519.PublicKey))}}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(stateDir, ".jwks-*.json")
	if err != nil {
		return fmt.Errorf("auth: write jwks: %w", err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), DevJWKSPath(stateDir))
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("auth: write jwks: %w", werr)
	}
	return nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key, used as its kid.
func Thumbprint(pub ed25519.PublicKey) string {
	// The members in lexical order, no whitespace, as RFC 7638 requires.
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Mint signs a token for sub on plan, valid from now for ttl, with the dev key.
func (k *DevKey) Mint(sub, plan string, now time.Time, ttl time.Duration) (string, error) {
	return k.MintSID(sub, plan, "", now, ttl)
}

// MintSID is Mint with a sid claim ("" for none).
func (k *DevKey) MintSID(sub, plan, sid string, now time.Time, ttl time.Duration) (string, error) {
	iss, aud := k.Issuer, k.Audience
	if iss == "" {
		iss = DefaultIssuer
	}
	if aud == "" {
		aud = DefaultAudience
	}
	return Sign(k.Private, k.KID, &Claims{
		Plan: plan,
		SID:  sid,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			Issuer:    iss,
			Audience:  jwt.ClaimStrings{aud},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	})
}

// Sign signs claims with key under kid.
func Sign(key ed25519.PrivateKey, kid string, claims jwt.Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}
