package main

import (
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"time"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/config"
	wire "github.com/codingplan/codingplan/shared"
)

// Development tokens printed by serve.
const (
	devSubject = "dev"
	devPlan    = "pro" // or, when the configuration offers no "pro", its first plan by name
	devTTL     = 7 * 24 * time.Hour
)

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
