package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// API keys are "cpk_" and 32 random bytes in unpadded base64url; the store keeps the SHA-256 of
// the whole key and its first KeyPrefixLen characters, shown in lists.
//
// TODO(tokens): the tokens package verifies these keys in its API-key grant; when it is merged,
// use its generator here so the format is defined once.
const (
	keyScheme    = "cpk_"
	KeyPrefixLen = len(keyScheme) + 8
)

// NewAPIKey returns a new key and its record for the account; the key is shown once and never
// stored.
func NewAPIKey(accountID, name string, now time.Time) (key string, rec store.APIKey) {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	key = keyScheme + base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(key))
	return key, store.APIKey{ID: store.NewID(), AccountID: accountID, Name: name, Prefix: key[:KeyPrefixLen],
		Hash: h[:], Created: now}
}

// KeyCreator is the part of the store CreateKey needs.
type KeyCreator interface {
	CreateAPIKey(ctx context.Context, k store.APIKey) error
}

// CreateKey makes and stores a new key for the account and returns the key and its record.
func CreateKey(ctx context.Context, st KeyCreator, accountID, name string, now time.Time) (string, store.APIKey, error) {
	key, rec := NewAPIKey(accountID, name, now)
	if err := st.CreateAPIKey(ctx, rec); err != nil {
		return "", store.APIKey{}, err
	}
	return key, rec, nil
}
