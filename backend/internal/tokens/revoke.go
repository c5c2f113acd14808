package tokens

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// Revoke ends the sign-in a refresh token belongs to (RFC 7009): the editor's sign-out. The
// token is rotated once, which finds its sign-in and spends it, and the sign-in is revoked;
// Config.OnRevoke then tells the routing plane. An unknown or malformed token is not an error
// (RFC 7009 §2.2: the client's goal, that the token be unusable, is met), nor is a used one,
// whose presentation revoked its sign-in already.
func (i *Issuer) Revoke(ctx context.Context, refresh string) error {
	if len(refresh) != refreshTokenLen {
		return nil
	}
	f, err := i.st.RotateRefresh(ctx, hash(refresh), hash(random(secretBytes)), i.now())
	switch {
	case errors.Is(err, store.ErrReused), errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	if err := i.st.RevokeFamily(ctx, f.AccountID, f.ID, i.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("tokens: revoke sign-in: %w", err)
	}
	i.log.Info("sign-in revoked by its client", "account", f.AccountID, "signin", f.ID)
	if i.cfg.OnRevoke != nil {
		i.cfg.OnRevoke(ctx, f.AccountID, f.ID)
	}
	return nil
}

// serveRevoke is POST /v1/revoke (RFC 7009 §2.1): token=<refresh token>, with an optional
// token_type_hint. Only refresh tokens can be revoked this way (access tokens end by
// themselves within access_ttl, API keys on the account's pages): any other hint answers
// unsupported_token_type.
func (i *Issuer) serveRevoke(w http.ResponseWriter, r *http.Request) {
	form, ok := i.publicForm(w, r)
	if !ok {
		return
	}
	if form.Has("client_id") && !validClientID(form.Get("client_id")) {
		i.writeError(w, r, errInvalidClient)
		return
	}
	token := form.Get("token")
	switch hint := form.Get("token_type_hint"); {
	case token == "":
		i.writeError(w, r, invalidRequest("token is missing"))
		return
	case hint != "" && hint != "refresh_token":
		i.writeError(w, r, errUnsupportedToken)
		return
	}
	if err := i.Revoke(r.Context(), token); err != nil {
		i.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
