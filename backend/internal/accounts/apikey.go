package accounts

import (
	"context"
	"errors"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// KeyMaker creates API keys; the tokens package's *tokens.Issuer satisfies it, so that the key
// format is defined once, where the API-key grant checks it. The key is returned in plain text
// once; only its hash is stored.
type KeyMaker interface {
	NewAPIKey(ctx context.Context, accountID, name string) (plaintext string, k store.APIKey, err error)
}

// ErrNotEntitled is what an Approver returns (wrapped) when the signed-in account may not have
// tokens (suspended, canceled, or without a plan): approval answers 403.
var ErrNotEntitled = errors.New("account not entitled to tokens")
