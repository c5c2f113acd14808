package signin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	wire "github.com/codingplan/codingplan/shared"
	"github.com/codingplan/codingplan/shared/clock"
)

// KeeperConfig configures a Keeper.
type KeeperConfig struct {
	// File keeps the refresh token of a device sign-in; a zero Path keeps it in memory only.
	File File
	// Set receives each new access token, and "" when the sign-in ends: the backend
	// connection's SetToken (through the server, which may prefer a token of the user's).
	Set func(wire.Secret)
	// Lost is told, once per credential, that it stopped working (revoked, expired, account
	// suspended), with a sentence for the user. It must not block.
	Lost func(message string)
	// Early is how long before an access token expires a fresh one is fetched (halfway for a
	// token that lives no longer than Early); 2m when zero.
	Early time.Duration
	// Clock schedules the refreshes; the real clock when nil.
	Clock clock.Clock
}

// credential is what access tokens are got with.
type credential struct {
	refresh wire.Secret // a device sign-in's current refresh token
	apiKey  wire.Secret // or an API key
}

func (c credential) none() bool { return c.refresh == "" && c.apiKey == "" }

// Keeper keeps an access token fresh: from a device sign-in's refresh token (stored in File and
// replaced at each refresh) or from an API key. Run owns its timer; the other methods are safe
// for concurrent use. Only one request to the service about the credential runs at a time, so
// a refresh token is never presented twice (which would end the sign-in).
type Keeper struct {
	cfg KeeperConfig
	log *slog.Logger

	op sync.Mutex // held across each request that uses or replaces the credential

	mu       sync.Mutex
	svc      *Service
	cred     credential
	access   wire.Secret
	expires  time.Time
	early    time.Duration // for the current token: cfg.Early, or half its lifetime
	failures int           // refreshes failed in a row, for the backoff
	retryAt  time.Time     // after a failure: when to try again
	refused  wire.Secret   // the access token the backend refused: refresh now
	forcedAt time.Time     // the last refresh the backend's refusal caused
	told     bool          // Lost was told: nothing to refresh until a new credential
	wake     chan struct{}
}

// NewKeeper returns a keeper with no credential; Configure gives it the service.
func NewKeeper(cfg KeeperConfig, log *slog.Logger) *Keeper {
	if cfg.Early <= 0 {
		cfg.Early = 2 * time.Minute
	}
	cfg.Clock = clock.OrReal(cfg.Clock)
	if cfg.Set == nil {
		cfg.Set = func(wire.Secret) {}
	}
	if cfg.Lost == nil {
		cfg.Lost = func(string) {}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{cfg: cfg, log: log, wake: make(chan struct{}, 1)}
}

// Service returns the account service the keeper uses.
func (k *Keeper) Service() *Service {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.svc
}

// Configure sets the account service and the API key (empty: none). A device sign-in with this
// service stays; else the API key is the credential, else the sign-in stored for this service.
func (k *Keeper) Configure(svc *Service, apiKey wire.Secret) {
	k.op.Lock()
	defer k.op.Unlock()
	k.mu.Lock()
	changedURL := k.svc == nil || k.svc.URL() != svc.URL()
	k.svc = svc
	cur := k.cred
	k.mu.Unlock()

	next := cur
	switch {
	case cur.refresh != "" && !changedURL:
	case apiKey != "":
		next = credential{apiKey: apiKey}
	default:
		next = credential{}
		if st, err := k.cfg.File.Load(); err == nil && st.URL == svc.URL() {
			next = credential{refresh: st.Refresh}
		} else if err != nil && !errors.Is(err, ErrSignedOut) && k.cfg.File.Path != "" {
			k.log.Warn("the stored sign-in cannot be read", "err", err)
		}
	}
	if next == cur {
		return
	}
	k.mu.Lock()
	k.cred, k.access, k.expires, k.failures, k.retryAt, k.told = next, "", time.Time{}, 0, time.Time{}, false
	k.mu.Unlock()
	if next.none() {
		k.cfg.Set("")
	}
	k.poke()
}

// SignedIn reports whether the keeper has a credential, and whether it is a device sign-in.
func (k *Keeper) SignedIn() (any, device bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.cred.none(), k.cred.refresh != ""
}

// Adopt makes a device sign-in's tokens the credential: the refresh token is stored, the access
// token handed on.
func (k *Keeper) Adopt(t Tokens) error {
	k.op.Lock()
	defer k.op.Unlock()
	k.mu.Lock()
	url := k.svc.URL()
	k.mu.Unlock()
	err := k.store(url, t.Refresh)
	k.mu.Lock()
	k.cred = credential{refresh: t.Refresh}
	k.failures, k.retryAt, k.told = 0, time.Time{}, false
	k.mu.Unlock()
	k.publish(t)
	return err
}

// SignOut revokes a device sign-in at the service, deletes the file and hands on "". The
// credential is forgotten even when the service cannot be reached (the error says so).
func (k *Keeper) SignOut(ctx context.Context) error {
	k.op.Lock()
	defer k.op.Unlock()
	k.mu.Lock()
	cred, svc := k.cred, k.svc
	k.cred, k.access, k.expires, k.told = credential{}, "", time.Time{}, false
	k.mu.Unlock()
	k.cfg.Set("")
	var errs []error
	if cred.refresh != "" && svc != nil {
		if err := svc.Revoke(ctx, cred.refresh); err != nil {
			errs = append(errs, fmt.Errorf("the sign-in could not be revoked at the account service: %w", err))
		}
	}
	if k.cfg.File.Path != "" {
		errs = append(errs, k.cfg.File.Delete())
	}
	k.poke()
	return errors.Join(errs...)
}

// Refused tells the keeper that the backend refused token (expired or revoked): if it is the
// keeper's, a fresh one is fetched now, at most every 30 s.
func (k *Keeper) Refused(token wire.Secret) {
	k.mu.Lock()
	mine := token != "" && token == k.access
	if mine {
		k.refused = token
	}
	k.mu.Unlock()
	if mine {
		k.poke()
	}
}

// forceEvery bounds the refreshes the backend's refusals cause.
const forceEvery = 30 * time.Second

func (k *Keeper) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// Run refreshes the access token before it expires until ctx ends.
func (k *Keeper) Run(ctx context.Context) {
	clk := k.cfg.Clock
	for ctx.Err() == nil {
		due, ok := k.due(clk.Now())
		if ok {
			k.renew(ctx)
			continue
		}
		var fired <-chan time.Time
		var t clock.Timer
		if !due.IsZero() {
			t, fired = clk.NewTimer(due.Sub(clk.Now()))
		}
		select {
		case <-ctx.Done():
		case <-k.wake:
		case <-fired:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// due reports whether a refresh is due now, and else when it will be (zero: not until
// something changes).
func (k *Keeper) due(now time.Time) (time.Time, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cred.none() || k.svc == nil || k.told {
		return time.Time{}, false
	}
	if k.refused != "" && k.refused == k.access {
		if now.Sub(k.forcedAt) >= forceEvery {
			return time.Time{}, true
		}
		return k.forcedAt.Add(forceEvery), false
	}
	at := k.expires.Add(-k.early)
	if k.access == "" {
		at = time.Time{}
	}
	if k.retryAt.After(at) {
		at = k.retryAt
	}
	if !now.Before(at) {
		return time.Time{}, true
	}
	return at, false
}

// renew gets a fresh access token with the credential.
func (k *Keeper) renew(ctx context.Context) {
	k.op.Lock()
	defer k.op.Unlock()
	k.mu.Lock()
	cred, svc := k.cred, k.svc
	if k.refused != "" && k.refused == k.access {
		k.forcedAt = k.cfg.Clock.Now()
	}
	k.refused = ""
	k.mu.Unlock()
	if cred.none() {
		return
	}
	var t Tokens
	var err error
	if cred.refresh != "" {
		t, err = svc.Refresh(ctx, cred.refresh)
		if err == nil {
			// Stored before it is used: a used refresh token ends the sign-in.
			if serr := k.store(svc.URL(), t.Refresh); serr != nil {
				k.log.Warn("the new refresh token could not be stored; it is kept in memory", "err", serr)
			}
		}
	} else {
		t, err = svc.Exchange(ctx, cred.apiKey)
	}
	switch {
	case err == nil:
		// k.op is held: the credential is still cred.
		k.mu.Lock()
		if cred.refresh != "" {
			k.cred.refresh = t.Refresh
		}
		k.failures, k.retryAt = 0, time.Time{}
		k.mu.Unlock()
		k.publish(t)
		k.log.Debug("access token renewed", "expires", t.Expires)
	case ctx.Err() != nil:
	case errors.Is(err, ErrInvalidGrant):
		what := "your codingplan sign-in has ended (signed out elsewhere, revoked, or the account cannot be used now): sign in again"
		if cred.apiKey != "" {
			what = "the codingplan API key was refused (revoked, or the account cannot be used now): set a valid key, or sign in"
		} else if k.cfg.File.Path != "" {
			if derr := k.cfg.File.Delete(); derr != nil {
				k.log.Warn("the ended sign-in's file could not be deleted", "err", derr)
			}
		}
		k.mu.Lock()
		k.cred, k.access, k.expires, k.told = credential{}, "", time.Time{}, true
		k.mu.Unlock()
		k.log.Info("the sign-in ended", "err", err)
		k.cfg.Set("")
		k.cfg.Lost(what)
	default:
		k.mu.Lock()
		k.failures++
		wait := min(time.Second<<min(k.failures-1, 6), time.Minute)
		var e *Error
		if errors.As(err, &e) && e.RetryAfter > wait {
			wait = e.RetryAfter
		}
		k.retryAt = k.cfg.Clock.Now().Add(wait)
		k.mu.Unlock()
		k.log.Warn("the access token could not be renewed; trying again", "in", wait, "err", err)
	}
}

// publish makes t the current access token and hands it on.
func (k *Keeper) publish(t Tokens) {
	now := k.cfg.Clock.Now()
	k.mu.Lock()
	k.access, k.expires = t.Access, t.Expires
	k.early = k.cfg.Early
	if life := t.Expires.Sub(now); k.early >= life {
		k.early = life / 2 // a token shorter-lived than Early: refreshed halfway
	}
	k.mu.Unlock()
	k.cfg.Set(t.Access)
	k.poke()
}

func (k *Keeper) store(url string, refresh wire.Secret) error {
	if k.cfg.File.Path == "" || refresh == "" {
		return nil
	}
	return k.cfg.File.Save(Stored{URL: url, Refresh: refresh})
}
