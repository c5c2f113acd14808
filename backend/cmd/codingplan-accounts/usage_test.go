package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/accounts"
	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/usage"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	wire "github.com/codingplan/codingplan/shared"
)

// TestUsageImport: serve's import loop is off without Valkey or with a period of 0, and
// otherwise copies the routing plane's counts into the database.
func TestUsageImport(t *testing.T) {
	vk := valkeytest.Start(t)
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{vk.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	d, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	s := accounts.DefaultSettings()
	s.ValkeyPrefix = "serve-usage"
	for _, off := range []func(){func() { s.Valkey = "" }, func() { s.Valkey, s.UsageImportEvery = vk.Addr(), 0 }} {
		off()
		if u, err := usageImport(d, client, s, log); u != nil || err != nil {
			t.Errorf("usageImport with valkey %q every %v: %v %v, want off", s.Valkey, s.UsageImportEvery, u, err)
		}
	}
	s.UsageImportEvery = 10 * time.Millisecond
	u, err := usageImport(d, client, s, log)
	if err != nil || u == nil {
		t.Fatalf("usageImport: %v %v", u, err)
	}
	a, err := d.CreateAccount(t.Context(), store.Account{Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := usage.New(client, s.ValkeyPrefix, nil).Record(t.Context(), a.ID, wire.Usage{PromptTokens: 4, CompletionTokens: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		days, err := d.Usage(t.Context(), a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(days) == 1 && days[0].Requests == 1 && days[0].Tokens == 5 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage %+v after 10s, want 1 request and 5 tokens", days)
		}
		<-tick.C
	}
}
