package tokens

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// User codes: 8 of the 20 consonants of RFC 8628 §6.1's example, shown XXXX-XXXX. No digits and
// no vowels: no O and 0 or I and 1 to confuse, no words spelled by chance, and case does not
// matter. 20^8 is about 2^34.6 codes; with a 15-minute life and the server's rate limits a guess
// is hopeless.
const (
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLen      = 8
)

// slowDownStep is what RFC 8628 §3.5 adds to the interval each time a client polls too early.
const slowDownStep = 5 * time.Second

// pollGrace is how much earlier than the interval a poll may come without slow_down, for
// network jitter.
const pollGrace = 500 * time.Millisecond

func newUserCode() string {
	var b [userCodeLen]byte
	n := big.NewInt(int64(len(userCodeAlphabet)))
	for j := range b {
		v, _ := rand.Int(rand.Reader, n) // never fails (crypto/rand)
		b[j] = userCodeAlphabet[v.Int64()]
	}
	return string(b[:])
}

// NormalizeUserCode returns the canonical form of a user code as typed (any case, with or
// without the dash, with spaces), or "" when it cannot be one.
func NormalizeUserCode(typed string) string {
	if len(typed) > 64 {
		return ""
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(typed) {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case r < 0x80 && strings.IndexByte(userCodeAlphabet, byte(r)) >= 0:
			b.WriteRune(r)
		default:
			return ""
		}
	}
	if b.Len() != userCodeLen {
		return ""
	}
	return b.String()
}

// FormatUserCode shows a canonical user code as XXXX-XXXX.
func FormatUserCode(code string) string {
	if len(code) != userCodeLen {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// deviceGrant is what the device authorization endpoint answers (RFC 8628 §3.2).
type deviceGrant struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// startDevice stores a new pending device sign-in for the client.
func (i *Issuer) startDevice(ctx context.Context, client string) (deviceGrant, error) {
	now := i.now()
	code := random(32)
	d := store.DeviceCode{Hash: hash(code), Client: client, Created: now,
		Expires: now.Add(i.cfg.DeviceTTL), Interval: i.cfg.PollInterval}
	var err error
	for range 3 { // a user code collision is rare; try another
		d.UserCode = newUserCode()
		if err = i.st.CreateDeviceCode(ctx, d); !errors.Is(err, store.ErrExists) {
			break
		}
	}
	if err != nil {
		return deviceGrant{}, fmt.Errorf("tokens: start device sign-in: %w", err)
	}
	shown := FormatUserCode(d.UserCode)
	complete := *i.verify
	q := complete.Query()
	q.Set("user_code", shown)
	complete.RawQuery = q.Encode()
	return deviceGrant{
		DeviceCode:              code,
		UserCode:                shown,
		VerificationURI:         i.verify.String(),
		VerificationURIComplete: complete.String(),
		ExpiresIn:               int64(i.cfg.DeviceTTL / time.Second),
		Interval:                int64(i.cfg.PollInterval / time.Second),
	}, nil
}

// Device returns the device sign-in a user code names, for the approval page (pending, approved,
// denied, expired: see Expires, AccountID, Denied). ErrUnknownCode when there is none.
func (i *Issuer) Device(ctx context.Context, userCode string) (store.DeviceCode, error) {
	code := NormalizeUserCode(userCode)
	if code == "" {
		return store.DeviceCode{}, ErrUnknownCode
	}
	d, err := i.st.DeviceByUserCode(ctx, code)
	if errors.Is(err, store.ErrNotFound) {
		return store.DeviceCode{}, ErrUnknownCode
	}
	if err != nil {
		return store.DeviceCode{}, fmt.Errorf("tokens: device: %w", err)
	}
	return d, nil
}

// Device sign-in states, as DeviceState names them.
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
	DeviceExpired  = "expired"
)

// DeviceState names the state of a device sign-in now, by the issuer's clock: DevicePending,
// DeviceApproved (its tokens not yet collected), DeviceDenied or DeviceExpired.
func (i *Issuer) DeviceState(d store.DeviceCode) string {
	switch {
	case !i.now().Before(d.Expires):
		return DeviceExpired
	case d.Denied:
		return DeviceDenied
	case d.AccountID != "":
		return DeviceApproved
	}
	return DevicePending
}

// pending returns the device sign-in a user code names if it can still be decided.
func (i *Issuer) pending(ctx context.Context, userCode string) (store.DeviceCode, error) {
	d, err := i.Device(ctx, userCode)
	if err != nil {
		return d, err
	}
	if !i.now().Before(d.Expires) {
		return d, ErrExpired
	}
	return d, nil
}

// Approve grants the device sign-in to the account; the web session that calls it has checked
// who is signed in. Approving again for the same account is a no-op. ErrUnknownCode, ErrExpired,
// ErrDecided (denied, or approved for another account), ErrNotEntitled (the account may not have
// tokens).
func (i *Issuer) Approve(ctx context.Context, userCode, accountID string) error {
	d, err := i.pending(ctx, userCode)
	if err != nil {
		return err
	}
	a, err := i.st.Account(ctx, accountID)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotEntitled
	}
	if err != nil {
		return fmt.Errorf("tokens: approve: %w", err)
	}
	if !entitled(a) {
		return ErrNotEntitled
	}
	switch err := i.st.ApproveDevice(ctx, d.UserCode, accountID); {
	case errors.Is(err, store.ErrExists):
		return ErrDecided
	case errors.Is(err, store.ErrNotFound):
		return ErrUnknownCode // deleted meanwhile
	case err != nil:
		return fmt.Errorf("tokens: approve: %w", err)
	}
	i.log.Info("device sign-in approved", "account", accountID, "client", d.Client)
	return nil
}

// Deny refuses the device sign-in; the device's next poll gets access_denied. ErrUnknownCode,
// ErrExpired, ErrDecided (already approved).
func (i *Issuer) Deny(ctx context.Context, userCode string) error {
	d, err := i.pending(ctx, userCode)
	if err != nil {
		return err
	}
	switch err := i.st.DenyDevice(ctx, d.UserCode); {
	case errors.Is(err, store.ErrExists):
		return ErrDecided
	case errors.Is(err, store.ErrNotFound):
		return ErrUnknownCode
	case err != nil:
		return fmt.Errorf("tokens: deny: %w", err)
	}
	return nil
}

// pollDevice answers one poll of the token endpoint with a device code (RFC 8628 §3.4-3.5).
func (i *Issuer) pollDevice(ctx context.Context, code, client string) (tokenResponse, error) {
	h := hash(code)
	d, err := i.st.DeviceByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return tokenResponse{}, errInvalidGrant
	}
	if err != nil {
		return tokenResponse{}, err
	}
	if !eq(d.Client, client) {
		return tokenResponse{}, errInvalidGrant // issued to another client
	}
	now := i.now()
	if !now.Before(d.Expires) {
		return tokenResponse{}, errExpiredToken
	}
	// The poll is recorded under the row's lock and the state before it comes back, so of two
	// concurrent polls the second sees the first's time: at most one gets the tokens.
	before, err := i.st.PollDevice(ctx, h, now, d.Interval)
	if errors.Is(err, store.ErrNotFound) {
		return tokenResponse{}, errInvalidGrant
	}
	if err != nil {
		return tokenResponse{}, err
	}
	if !before.LastPoll.IsZero() && now.Sub(before.LastPoll) < before.Interval-pollGrace {
		slower := before.Interval + slowDownStep
		if _, err := i.st.PollDevice(ctx, h, now, slower); err != nil {
			return tokenResponse{}, err
		}
		return tokenResponse{}, errSlowDown
	}
	switch {
	case before.Denied:
		return tokenResponse{}, errAccessDenied
	case before.AccountID == "":
		return tokenResponse{}, errPending
	}
	a, err := i.st.Account(ctx, before.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return tokenResponse{}, errAccessDenied
	}
	if err != nil {
		return tokenResponse{}, err
	}
	if !entitled(a) {
		return tokenResponse{}, errAccessDenied
	}
	resp, err := i.newSignIn(ctx, a, before.Client)
	if err != nil {
		return tokenResponse{}, err
	}
	if err := i.st.DeleteDevice(ctx, h); err != nil {
		i.log.Warn("device code not deleted after its tokens were issued", "err", err)
	}
	i.log.Info("device sign-in completed", "account", a.ID, "client", before.Client)
	return resp, nil
}
