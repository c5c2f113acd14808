package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/config"
	"github.com/codingplan/codingplan/backend/internal/lease"
	"github.com/codingplan/codingplan/backend/internal/valkeyconn"
)

// valkeyOptions are the client options for cfg's Valkey, with the password read through
// getenv; addrs is empty when none is configured.
func valkeyOptions(cfg *config.Config, getenv func(string) string) (opt valkey.ClientOption, addrs []string, err error) {
	conn := cfg.ValkeyConn()
	if len(conn.Addrs) == 0 {
		return opt, nil, nil
	}
	opt, err = valkeyconn.Options(conn, getenv)
	return opt, conn.Addrs, err
}

// dialValkey connects to the configured Valkey; nil when none is configured.
func dialValkey(cfg *config.Config, getenv func(string) string) (valkey.Client, error) {
	opt, addrs, err := valkeyOptions(cfg, getenv)
	if err != nil || len(addrs) == 0 {
		return nil, err
	}
	client, err := valkey.NewClient(opt)
	if err != nil {
		if client != nil { // a single client comes back even when its first dial failed
			client.Close()
		}
		return nil, fmt.Errorf("valkey %s unreachable (%s): %w", strings.Join(addrs, ","), valkeyconn.Cause(cfg.ValkeyConn(), err), err)
	}
	return client, nil
}

// openValkey connects to the configured Valkey; all nil when none is configured. When Valkey
// does not answer, serve starts anyway: client is then late, a lease.LateClient whose commands
// fail until it connects, which the lease pool does in the background while it is degraded
// under its outage policy (see lease.Config.Late).
func openValkey(cfg *config.Config, getenv func(string) string, log *slog.Logger) (client valkey.Client, late *lease.LateClient, err error) {
	opt, addrs, err := valkeyOptions(cfg, getenv)
	if err != nil || len(addrs) == 0 {
		return nil, nil, err
	}
	client, err = valkey.NewClient(opt)
	if err == nil {
		return client, nil, nil
	}
	if client != nil { // a single client comes back even when its first dial failed
		client.Close()
	}
	log.Warn("valkey unreachable at start: outage policy in force until it answers",
		"valkey", strings.Join(addrs, ","), "cause", valkeyconn.Cause(cfg.ValkeyConn(), err), "outage_policy", cfg.OutagePolicy, "err", err)
	if late, err = lease.NewLateClient(opt, log.With("component", "valkey")); err != nil {
		return nil, nil, err
	}
	return late, late, nil
}
