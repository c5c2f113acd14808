package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/config"
	"github.com/codingplan/codingplan/backend/internal/conns"
	"github.com/codingplan/codingplan/backend/internal/gateway"
	"github.com/codingplan/codingplan/backend/internal/lease"
	"github.com/codingplan/codingplan/backend/internal/metrics"
	"github.com/codingplan/codingplan/backend/internal/revoke"
	"github.com/codingplan/codingplan/backend/internal/upstream"
	"github.com/codingplan/codingplan/backend/internal/usage"
	wire "github.com/codingplan/codingplan/shared"
)

// node is one running codingplan-backend's parts, built from its configuration by build.
// listen serves them, drain stops the traffic, and close takes down what build started.
type node struct {
	cfg        *config.Config
	log        *slog.Logger
	dev        *auth.DevKey // the development key; nil when tokens are verified with --jwks
	memoryLock string       // "locked", or "unlocked" when content may reach swap

	pool    *lease.Pool
	local   *upstream.LocalLoader
	router  *upstream.Router
	gw      *gateway.Server
	handler http.Handler

	stopLocal context.CancelFunc // cuts the local models' loading short
	cleanups  []func()           // run by close, last first
}

// build constructs a node from cfg. ctx is serve's: when it ends, the local models stop
// loading and the revocation watcher stops. On an error, what was built is taken down again.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer, getenv func(string) string) (_ *node, err error) {
	n := &node{cfg: cfg, log: log, memoryLock: harden(log)}
	defer func() {
		if err != nil {
			if n.pool != nil {
				n.closePool()
			}
			n.close()
		}
	}()

	verifier, err := n.verifier(ctx)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	client, late, err := openValkey(cfg, getenv, log)
	if err != nil {
		return nil, err
	}
	if client != nil {
		n.cleanups = append(n.cleanups, client.Close)
	}
	maxWait := cfg.LeaseMaxWait
	if maxWait == 0 {
		maxWait = -1 // lease.Config: negative means do not wait
	}
	// With late set, the pool starts degraded and connects it in the background; usage and
	// revocations share the client, whose commands fail until then.
	n.pool = lease.New(client, lease.Config{
		Prefix: cfg.ValkeyPrefix, TTL: cfg.LeaseTTL, MaxWait: maxWait, NodeCap: cfg.NodeCap,
		OutageNodes: cfg.OutageShare(), RecoveryWindow: cfg.LeaseRecoveryWindow,
		Linger: cfg.LeaseLinger, Observer: m, Late: late,
	}, log.With("component", "lease"))
	m.WatchReady(n.pool.Ready)
	meter := usage.New(client, cfg.ValkeyPrefix, log.With("component", "usage"))

	// Local models load in the background; close waits for them (ctx cuts a training short).
	lctx, lcancel := context.WithCancel(ctx)
	n.stopLocal = lcancel
	n.local = upstream.NewLocalLoader(upstream.LocalFactory(lctx, cfg.StateDir), cfg.StateDir,
		log.With("component", "upstream"), stdout)
	n.cleanups = append(n.cleanups, n.local.Wait, lcancel)
	n.router, err = upstream.New(cfg.Config, upstream.Options{
		Factories: map[string]upstream.Factory{upstream.KindLocal: n.local.Factory()},
		Getenv:    getenv,
		Log:       log.With("component", "upstream"),
	})
	if err != nil {
		return nil, err
	}
	n.cleanups = append(n.cleanups, n.router.Close)

	var revocations gateway.Revocations
	var counter gateway.Conns // nil without Valkey: max_conns is not enforced, max_conns_per_node is
	if client != nil {
		revocations = revoke.NewChecker(client, cfg.ValkeyPrefix)
		c := conns.New(client, conns.Config{Prefix: cfg.ValkeyPrefix, TTL: cfg.ConnCountTTL, Observer: m},
			log.With("component", "conns"))
		n.cleanups = append(n.cleanups, c.Close) // after the drain closed every connection
		counter = c
	}
	n.gw = gateway.New(gateway.Config{
		Plans: cfg.PlanLimits(), AllowedOrigins: cfg.AllowedOrigins, MaxInFlight: cfg.MaxInFlight,
		SendQueue: cfg.SendQueue, SlowConsumer: cfg.SlowConsumer, PingInterval: cfg.PingInterval,
		IdleTimeout: cfg.IdleTimeout, WriteTimeout: cfg.WriteTimeout, Server: "codingplan-backend/" + versionString(),
		MaxConnsPerNode: cfg.MaxConnsPerNode, MaxConns: cfg.MaxConns,
		UpgradesPerMinute: cfg.UpgradesPerMinute, UpgradeBurst: cfg.UpgradeBurst,
	}, gateway.Deps{
		Verifier: verifier, Leases: gateway.Pool(n.pool), Router: gateway.Routes(n.router),
		Models: n.router, Meter: meter, Observer: m, Revocations: revocations, Conns: counter,
	}, log.With("component", "gateway"))
	// A local model that finishes loading changes what hello says: clients get a new one.
	n.local.OnChange(func() { n.gw.ModelsChanged(ctx) })
	if client != nil {
		n.watchRevocations(ctx, client)
	}
	n.handler = n.routes(m)
	return n, nil
}

// harden keeps request content out of core dumps and swap as far as the system lets it, and
// says how far in the returned memory lock state.
func harden(log *slog.Logger) (memoryLock string) {
	if err := disableCoreDumps(); err != nil {
		log.Warn("core dumps could not be disabled", "err", err)
	}
	if err := lockMemory(); err != nil {
		log.Warn("memory not locked: request content may be swapped to disk", "err", err)
		return "unlocked"
	}
	return "locked"
}

// verifier verifies tokens with the configured JWKS, or in development mode (no JWKS) with
// the state dir's development key, which it then keeps in n.dev.
func (n *node) verifier(ctx context.Context) (*auth.Verifier, error) {
	cfg := n.cfg
	jwks := cfg.JWKS
	if jwks == "" {
		dev, _, err := auth.LoadOrCreateDevKey(cfg.StateDir)
		if err != nil {
			return nil, err
		}
		dev.Issuer, dev.Audience = cfg.Issuer, cfg.Audience
		n.dev = dev
		jwks = auth.DevJWKSPath(cfg.StateDir)
		n.log.Warn("development mode: tokens are verified with the development key", "jwks", jwks)
	}
	return auth.NewVerifier(ctx, auth.Config{
		JWKS: jwks, Issuer: cfg.Issuer, Audience: cfg.Audience, Leeway: cfg.TokenLeeway, Refetch: cfg.JWKSRefetch, MaxAge: cfg.JWKSMaxAge,
	}, n.log.With("component", "auth"))
}

// watchRevocations brings the revocations and plan changes that the account service publishes
// to this node's connections (docs/operations.md, "Revocation") until ctx ends; close waits
// for it.
func (n *node) watchRevocations(ctx context.Context, client valkey.Client) {
	wctx, wcancel := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { // owned by the node: its cleanup below waits for it before client.Close
		defer close(watched)
		revoke.NewWatcher(client, n.cfg.ValkeyPrefix, n.gw, n.log.With("component", "revoke")).Run(wctx)
	}()
	n.cleanups = append(n.cleanups, func() {
		wcancel()
		<-watched
	})
}

// routes is the node's HTTP handler: the websocket, health, readiness and metrics.
func (n *node) routes(m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+wire.Path, n.gw)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", n.readyz)
	mux.Handle("GET /metrics", m.Handler())
	return mux
}

// readyz says whether the node takes traffic. status is about taking traffic (draining) and the
// leases (Valkey); local_model says whether the local model still loads, without making the
// node unready for it.
func (n *node) readyz(w http.ResponseWriter, _ *http.Request) {
	code, body := http.StatusOK, map[string]string{"status": "ready"}
	switch {
	case n.gw.Draining():
		code, body["status"] = http.StatusServiceUnavailable, "draining"
	case n.pool.Ready() != nil:
		// Still serving, under the outage policy: ready, but flagged.
		body["status"], body["leases"] = "degraded", "valkey unreachable; outage policy "+n.cfg.OutagePolicy
	}
	if st := n.local.Status(); st != "" {
		body["local_model"] = st
	}
	body["memory_lock"] = n.memoryLock // "unlocked": content may reach swap (see the log)
	writeJSON(w, code, body)
}

// closePool releases every lease this node still holds and stops the pool's background work.
func (n *node) closePool() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.pool.Close(ctx); err != nil {
		n.log.Warn("lease pool close", "err", err)
	}
}

// close takes down what build started, last first: the revocation watcher, the router, the
// local models' loading, the Valkey client. Call it after closePool.
func (n *node) close() {
	for _, f := range slices.Backward(n.cleanups) {
		f()
	}
	n.cleanups = nil
}
