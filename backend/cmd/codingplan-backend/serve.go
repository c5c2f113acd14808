package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/config"
	"github.com/codingplan/codingplan/backend/internal/gateway"
	"github.com/codingplan/codingplan/backend/internal/lease"
	"github.com/codingplan/codingplan/backend/internal/metrics"
	"github.com/codingplan/codingplan/backend/internal/revoke"
	"github.com/codingplan/codingplan/backend/internal/upstream"
	"github.com/codingplan/codingplan/backend/internal/usage"
	"github.com/codingplan/codingplan/backend/internal/valkeyconn"
	wire "github.com/codingplan/codingplan/shared"
)

// Development tokens printed by serve.
const (
	devSubject = "dev"
	devPlan    = "pro" // or, when the configuration offers no "pro", its first plan by name
	devTTL     = 7 * 24 * time.Hour
)

// serve runs the service until ctx ends (SIGINT or SIGTERM), then drains and returns nil.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := parse(fs, args, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	if err := disableCoreDumps(); err != nil {
		log.Warn("core dumps could not be disabled", "err", err)
	}
	memoryLock := "locked"
	if err := lockMemory(); err != nil {
		memoryLock = "unlocked"
		log.Warn("memory not locked: request content may be swapped to disk", "err", err)
	}

	jwks := cfg.JWKS
	var dev *auth.DevKey
	if jwks == "" {
		if dev, _, err = auth.LoadOrCreateDevKey(cfg.StateDir); err != nil {
			return err
		}
		dev.Issuer, dev.Audience = cfg.Issuer, cfg.Audience
		jwks = auth.DevJWKSPath(cfg.StateDir)
		log.Warn("development mode: tokens are verified with the development key", "jwks", jwks)
	}
	verifier, err := auth.NewVerifier(ctx, auth.Config{
		JWKS: jwks, Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.TokenLeeway, Refetch: cfg.JWKSRefetch, MaxAge: cfg.JWKSMaxAge,
	}, log.With("component", "auth"))
	if err != nil {
		return err
	}

	m := metrics.New()
	client, late, opt, err := openValkey(cfg, getenv, log)
	if err != nil {
		return err
	}
	if client != nil {
		defer client.Close()
	}
	maxWait := cfg.LeaseMaxWait
	if maxWait == 0 {
		maxWait = -1 // lease.Config: negative means do not wait
	}
	pool := lease.New(client, lease.Config{
		Prefix: cfg.ValkeyPrefix, TTL: cfg.LeaseTTL, MaxWait: maxWait, NodeCap: cfg.NodeCap,
		OutageNodes: cfg.OutageShare(), RecoveryWindow: cfg.LeaseRecoveryWindow,
		Linger: cfg.LeaseLinger, Observer: m,
	}, log.With("component", "lease"))
	m.WatchReady(pool.Ready)
	meter := usage.New(client, cfg.ValkeyPrefix, log.With("component", "usage"))
	if late != nil {
		// The pool starts out trusting Valkey; one failed call makes it degraded (and starts
		// its prober) now, not at the first request.
		_, _ = pool.InUse(ctx, "-")
		cctx, cancel := context.WithCancel(ctx)
		connected := make(chan struct{})
		go func() { // owned by serve: the deferred func below waits for it before client.Close
			defer close(connected)
			late.connect(cctx, opt, log.With("component", "valkey"))
		}()
		defer func() {
			cancel()
			<-connected
		}()
	}

	// Local models load in the background; serve's return waits for them (ctx cuts a training
	// short).
	lctx, lcancel := context.WithCancel(ctx)
	local := &localModels{open: upstream.LocalFactory(lctx, cfg.StateDir), state: cfg.StateDir,
		log: log.With("component", "upstream"), stdout: stdout}
	defer local.wait()
	defer lcancel()
	router, err := upstream.New(cfg.Config, upstream.Options{
		Factories: map[string]upstream.Factory{upstream.KindLocal: local.factory()},
		Getenv:    getenv,
		Log:       log.With("component", "upstream"),
	})
	if err != nil {
		closePool(pool, log)
		return err
	}
	defer router.Close()

	var revocations gateway.Revocations
	if client != nil {
		revocations = revoke.NewChecker(client, cfg.ValkeyPrefix)
	}
	gw := gateway.New(gateway.Config{
		Plans: cfg.PlanLimits(), AllowedOrigins: cfg.AllowedOrigins, MaxInFlight: cfg.MaxInFlight,
		SendQueue: cfg.SendQueue, SlowConsumer: cfg.SlowConsumer, PingInterval: cfg.PingInterval,
		IdleTimeout: cfg.IdleTimeout, WriteTimeout: cfg.WriteTimeout,
		Server: "codingplan-backend/" + versionString(),
	}, gateway.Deps{
		Verifier: verifier, Leases: gateway.Pool(pool), Router: gateway.Routes(router),
		Meter: meter, Observer: m, Revocations: revocations,
	}, log.With("component", "gateway"))
	if client != nil {
		// Revocations and plan changes published by the account service reach this node's
		// connections through the watcher (docs/operations.md, "Revocation").
		wctx, wcancel := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() { // owned by serve: the deferred func below waits for it before client.Close
			defer close(watched)
			revoke.NewWatcher(client, cfg.ValkeyPrefix, gw, log.With("component", "revoke")).Run(wctx)
		}()
		defer func() {
			wcancel()
			<-watched
		}()
	}

	mux := http.NewServeMux()
	mux.Handle("GET "+wire.Path, gw)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		// status is about taking traffic (draining) and the leases (Valkey); local_model says
		// whether the local model still loads, without making the node unready for it.
		code, body := http.StatusOK, map[string]string{"status": "ready"}
		switch {
		case gw.Draining():
			code, body["status"] = http.StatusServiceUnavailable, "draining"
		case pool.Ready() != nil:
			// Still serving, under the outage policy: ready, but flagged.
			body["status"], body["leases"] = "degraded", "valkey unreachable; outage policy "+cfg.OutagePolicy
		}
		if st := local.status(); st != "" {
			body["local_model"] = st
		}
		body["memory_lock"] = memoryLock // "unlocked": content may reach swap (see the log)
		writeJSON(w, code, body)
	})
	mux.Handle("GET /metrics", m.Handler())

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		closePool(pool, log)
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	addrs, cluster, _ := cfg.ValkeyAddrs()
	log.Info("listening", "addr", ln.Addr().String(), "version", versionString(), "valkey", len(addrs) > 0,
		"valkey_cluster", cluster, "models", len(cfg.Models), "default_model", router.DefaultModel())
	if dev != nil {
		if err := printDevBanner(stdout, dev, bannerPlan(cfg), ln.Addr(), cfg.StateDir); err != nil {
			log.Warn("development token not printed", "err", err)
		}
	}
	if local.status() == localLoading {
		fmt.Fprint(stdout, "codingplan-backend: the local model is loading in the background (the first start trains it,\n"+
			"about a minute); until it is ready its completions end with upstream_unavailable.\n")
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }() // owned by serve, which receives from serveErr below
	select {
	case err := <-serveErr:
		sctx, scancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
		_ = gw.Shutdown(sctx)
		scancel()
		closePool(pool, log)
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}

	log.Info("draining", "timeout", cfg.DrainTimeout.String())
	dctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		// Closes the listener at once; waits for plain HTTP requests in progress.
		if err := srv.Shutdown(dctx); err != nil {
			log.Warn("http shutdown", "err", err)
		}
	})
	wg.Go(func() {
		if err := gw.Shutdown(dctx); err != nil {
			log.Warn("drain deadline passed; remaining streams were cancelled", "err", err)
		}
	})
	wg.Wait()
	<-serveErr // http.ErrServerClosed
	closePool(pool, log)
	lcancel()
	local.wait()
	log.Info("stopped")
	return nil
}

// openValkey connects to the configured Valkey; all nil when none is configured. When Valkey
// does not answer, serve starts anyway: client is then late, a lateClient whose commands fail
// until late.connect reaches Valkey, so the lease pool starts degraded under its outage
// policy (see lease.Config.OutageNodes).
func openValkey(cfg *config.Config, getenv func(string) string, log *slog.Logger) (client valkey.Client, late *lateClient, opt valkey.ClientOption, err error) {
	opt, addrs, err := valkeyOptions(cfg, getenv)
	if err != nil || len(addrs) == 0 {
		return nil, nil, opt, err
	}
	client, err = valkey.NewClient(opt)
	if err == nil {
		return client, nil, opt, nil
	}
	if client != nil { // a single client comes back even when its first dial failed
		client.Close()
	}
	log.Warn("valkey unreachable at start: outage policy in force until it answers",
		"valkey", strings.Join(addrs, ","), "cause", valkeyconn.Cause(cfg.ValkeyConn(), err), "outage_policy", cfg.OutagePolicy, "err", err)
	if late, err = newLateClient(opt); err != nil {
		return nil, nil, opt, err
	}
	return late, late, opt, nil
}

// closePool releases every lease this node still holds.
func closePool(pool *lease.Pool, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pool.Close(ctx); err != nil {
		log.Warn("lease pool close", "err", err)
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by config
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// printDevBanner tells the person running serve how to point an editor at the backend. The
// development token goes only to a terminal: stdout redirected to a file, a pipe or a journal is
// a log, and a credential never goes to a log. Elsewhere the banner says how to mint a token.
func printDevBanner(w io.Writer, dev *auth.DevKey, plan string, addr net.Addr, stateDir string) error {
	url := "ws://" + dialable(addr) + wire.Path
	if !isTerminal(w) {
		_, err := fmt.Fprintf(w, `
codingplan-backend is running in development mode: tokens are signed with the key in
%s (no --jwks given). No token is printed because stdout is not a terminal, so it
could be kept in a log; mint one with

  codingplan-backend token --sub %s --plan %s --state-dir %s

and point codingplan-lsp (your editor starts it) at this backend:

  export CODINGPLAN_BACKEND_URL=%s
  export CODINGPLAN_TOKEN=<the token>

`, stateDir, devSubject, plan, stateDir, url)
		return err
	}
	now := time.Now()
	tok, err := dev.Mint(devSubject, plan, now, devTTL)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, `
codingplan-backend is running in development mode: tokens are signed with the key in
%s (no --jwks given).

A development token for user %q on plan %q, valid until %s:

%s

Point codingplan-lsp (your editor starts it) at this backend:

  export CODINGPLAN_BACKEND_URL=%s
  export CODINGPLAN_TOKEN=%s

then start your editor from this shell (see docs/editors.md), or test the language server with
  CODINGPLAN_BACKEND_URL=%s CODINGPLAN_TOKEN=... codingplan-lsp --stdio

More tokens: codingplan-backend token --sub USER --plan PLAN --state-dir %s

`, stateDir, devSubject, plan, now.Add(devTTL).UTC().Format(time.RFC3339), tok, url, tok, url, stateDir)
	return err
}

// bannerPlan is the plan of the banner's token: devPlan when the configuration offers it.
func bannerPlan(cfg *config.Config) string {
	if _, ok := cfg.Plans[devPlan]; ok {
		return devPlan
	}
	return slices.Sorted(maps.Keys(cfg.Plans))[0] // Validate makes sure there is one
}

// isTerminal reports whether w is a terminal: a character device (so /dev/null counts too,
// which keeps nothing), or a writer that says so (tests).
func isTerminal(w io.Writer) bool {
	switch w := w.(type) {
	case interface{ IsTerminal() bool }:
		return w.IsTerminal()
	case *os.File:
		fi, err := w.Stat()
		return err == nil && fi.Mode()&os.ModeCharDevice != 0
	}
	return false
}

// dialable turns a listen address into one a local client can dial.
func dialable(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
