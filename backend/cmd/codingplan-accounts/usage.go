package main

import (
	"fmt"
	"log/slog"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/accounts"
)

// usageImport is serve's import of the routing plane's daily usage counts (issue 11: billing
// metrics read from the anonymous counters in Valkey), every s.UsageImportEvery, with client the
// routing plane's Valkey. It returns nil when the import is off (no Valkey, or a period of 0).
func usageImport(d db, client valkey.Client, s *accounts.Settings, log *slog.Logger) (*accounts.Usage, error) {
	if client == nil || s.Valkey == "" || s.UsageImportEvery <= 0 {
		return nil, nil
	}
	// Both stores have SetUsage; db (cli.go) does not list it yet.
	st, ok := d.(accounts.UsageStore)
	if !ok {
		return nil, fmt.Errorf("usage import: the store %T cannot set usage", d)
	}
	return &accounts.Usage{Store: st, Client: client, Prefix: s.ValkeyPrefix, Days: 2,
		Every: s.UsageImportEvery, Log: log.With("component", "usage")}, nil
}
