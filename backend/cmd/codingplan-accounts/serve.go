package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/codingplan/codingplan/backend/internal/accounts"
	"github.com/codingplan/codingplan/backend/internal/billing"
	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/tokens"
)

// shutdownTimeout bounds the wait for requests in progress at SIGTERM.
const shutdownTimeout = 15 * time.Second

// Housekeeping: how often expired sessions and device codes are deleted, and how long webhook
// event ids are kept (far longer than the providers retry a delivery: Stripe for 3 days).
const (
	housekeepEvery = 10 * time.Minute
	keepEvents     = 30 * 24 * time.Hour
	// keepRefresh is how long a rotated refresh token (and a revoked sign-in) is remembered, so
	// that its reuse revokes the sign-in; older ones are merely unknown.
	keepRefresh = 90 * 24 * time.Hour
)

// serve runs the service until ctx ends (SIGINT or SIGTERM), then finishes the requests in
// progress and returns nil. A database that is unreachable at start or later makes requests
// that need it answer 503 (and /readyz too) until it is back; migrations are retried meanwhile.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	s, _, err := parse(fs, args, 0, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, s.LogLevel)
	bcfg, err := s.BillingConfig(getenv)
	if err != nil {
		return err
	}
	d, err := openDB(ctx, s)
	if err != nil {
		return err
	}
	defer d.Close()

	// Migrations: now, or, while the database is unreachable, in the background until they run.
	var wg sync.WaitGroup
	mctx, mcancel := context.WithCancel(ctx)
	defer func() { mcancel(); wg.Wait() }()
	issuer := &lazyIssuer{}
	tlog := log.With("component", "tokens")
	revoked := &relay{log: tlog}
	if err := d.Migrate(ctx); err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			return err
		}
		log.Warn("database unreachable at start: migrating when it answers; 503 until then", "err", err)
		wg.Go(func() {
			if migrateLater(mctx, d, log) {
				loadIssuerLater(mctx, s, d, issuer, revoked, tlog)
			}
		})
	} else {
		iss, err := newIssuer(s, d, revoked, tlog)
		if err != nil {
			return err
		}
		issuer.set(iss)
	}

	wg.Go(func() { housekeep(mctx, d, issuer, log) })

	var notify accounts.Notifier
	client, err := dialValkey(s, getenv)
	switch {
	case err != nil:
		return err
	case client == nil:
		log.Warn(noValkey)
	default:
		defer client.Close()
		notify = newPublisher(s, client)
		revoked.set(notify)
		u, err := usageImport(d, client, s, log)
		if err != nil {
			return err
		}
		if u != nil { // stopped before the client closes (defers run last first)
			uctx, ucancel := context.WithCancel(ctx)
			var uwg sync.WaitGroup
			uwg.Go(func() { u.Run(uctx) })
			defer func() { ucancel(); uwg.Wait() }()
		}
	}

	mailer, err := newMailer(s, getenv)
	if err != nil {
		return err
	}
	switch {
	case mailer == nil && s.Dev:
		log.Warn("no mail.smtp: mails are not delivered; development mode lists them at /dev/mail")
	case mailer == nil:
		log.Warn("no mail.smtp: sign-up confirmations and password resets are not delivered")
	}
	srv := accounts.New(accounts.Options{
		Store: d, Settings: s, Webhooks: billing.NewWebhooks(bcfg), Plans: bcfg.Plans,
		Checkout: billing.NewCheckout(bcfg, nil),
		Tokens:   issuer, Approver: issuer, Keys: issuer, Devices: issuer, Notify: notify, Mailer: mailer,
		Log: log.With("component", "accounts"),
	})
	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	kind, _, _ := accounts.ParseDatabase(s.DatabaseURL())
	log.Info("listening", "addr", ln.Addr().String(), "version", versionString(), "database", kind,
		"public_url", s.URL(), "stripe_webhooks", len(bcfg.StripeSecrets) > 0, "polar_webhooks", len(bcfg.PolarSecrets) > 0)
	fmt.Fprintf(stdout, "codingplan-accounts is listening on http://%s (database: %s).\n"+
		"Create an account and a key with\n\n"+
		"  codingplan-accounts account create --email you@example.com --name You --plan pro\n"+
		"  codingplan-accounts key create you@example.com --name laptop\n\n"+
		"and exchange the key for an access token with\n\n"+
		"  curl -d grant_type=%s -d api_key=KEY %s/v1/token\n\n", ln.Addr(), kind, tokens.GrantAPIKey, s.URL())

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }() // owned by serve, which receives from serveErr below
	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("stopping", "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	<-serveErr // http.ErrServerClosed
	log.Info("stopped")
	return nil
}

// newMailer is the SMTP sender of the settings' [mail], or nil when no server is set (the
// pages then keep their mails in memory).
func newMailer(s *accounts.Settings, getenv func(string) string) (accounts.Mailer, error) {
	if s.Mail.SMTP == "" {
		return nil, nil
	}
	m := &accounts.SMTP{Addr: s.Mail.SMTP, From: s.Mail.From, Username: s.Mail.Username}
	if n := s.Mail.PasswordEnv; n != "" {
		if m.Password = getenv(n); m.Password == "" {
			return nil, fmt.Errorf("mail: environment variable %s is empty", n)
		}
	}
	return m, nil
}

// migrateLater retries the migrations with backoff until they run (true) or ctx ends.
func migrateLater(ctx context.Context, d db, log *slog.Logger) bool {
	wait := time.Second
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		err := d.Migrate(ctx)
		if err == nil {
			log.Info("database reachable: migrations applied")
			return true
		}
		if !errors.Is(err, store.ErrUnavailable) {
			log.Error("migrations failed", "err", err)
			return false
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// loadIssuerLater retries loading the signing keys with backoff until it works or ctx ends.
func loadIssuerLater(ctx context.Context, s *accounts.Settings, d db, l *lazyIssuer, revoked *relay, log *slog.Logger) {
	wait := time.Second
	for {
		iss, err := newIssuer(s, d, revoked, log)
		if err == nil {
			l.set(iss)
			log.Info("signing keys loaded")
			return
		}
		log.Warn("loading signing keys", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// housekeep deletes expired sessions and device codes, old webhook event ids, old rotated
// refresh tokens and superseded signing keys, now and every housekeepEvery, until ctx ends.
// Failures (the database away) wait for the next round.
func housekeep(ctx context.Context, d db, issuer *lazyIssuer, log *slog.Logger) {
	t := time.NewTicker(housekeepEvery)
	defer t.Stop()
	for {
		now := time.Now()
		n, err := d.DeleteExpired(ctx, now)
		if err == nil {
			var m int64
			m, err = d.PruneEvents(ctx, now.Add(-keepEvents))
			n += m
		}
		if err == nil {
			var m int64
			m, err = d.PruneRefresh(ctx, now.Add(-keepRefresh))
			n += m
		}
		if iss, ierr := issuer.get(); err == nil && ierr == nil {
			var gone []string
			gone, err = iss.Prune(ctx)
			n += int64(len(gone))
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("housekeeping", "err", err)
		} else if n > 0 {
			log.Debug("housekeeping", "rows_deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by the settings
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
