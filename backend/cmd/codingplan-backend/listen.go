package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/codingplan/codingplan/backend/internal/upstream"
)

// listen opens the node's listening socket and the HTTP server for it, and tells the log and
// the person running serve where it listens (in development mode, with a token).
func (n *node) listen(stdout io.Writer) (net.Listener, *http.Server, error) {
	cfg, log := n.cfg, n.log
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           n.handler,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	addrs, cluster, _ := cfg.ValkeyAddrs()
	log.Info("listening", "addr", ln.Addr().String(), "version", versionString(), "valkey", len(addrs) > 0,
		"valkey_cluster", cluster, "models", len(cfg.Models), "default_model", n.router.DefaultModel())
	if n.dev != nil {
		if err := printDevBanner(stdout, n.dev, bannerPlan(cfg), ln.Addr(), cfg.StateDir); err != nil {
			log.Warn("development token not printed", "err", err)
		}
	}
	if n.local.Status() == upstream.LocalLoading {
		fmt.Fprint(stdout, "codingplan-backend: the local model is loading in the background (the first start trains it,\n"+
			"about a minute); until it is ready its completions end with upstream_unavailable.\n")
	}
	return ln, srv, nil
}
