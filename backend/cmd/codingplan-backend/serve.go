package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
)

// serve runs the service until ctx ends (SIGINT or SIGTERM), then drains and returns nil: build
// constructs the node from its configuration, listen opens its socket, drain stops it.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := parse(fs, args, getenv)
	if err != nil {
		return err
	}
	n, err := build(ctx, cfg, newLogger(stderr, cfg.LogLevel), stdout, getenv)
	if err != nil {
		return err
	}
	defer n.close()
	ln, srv, err := n.listen(stdout)
	if err != nil {
		n.closePool()
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }() // owned by serve: drain receives from serveErr
	select {
	case err := <-serveErr:
		n.abort()
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	n.drain(srv, serveErr)
	return nil
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
