package accounts

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/usage"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	wire "github.com/codingplan/codingplan/shared"
)

func newValkeyClient(t *testing.T) valkey.Client {
	t.Helper()
	vk := valkeytest.Start(t)
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{vk.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestImportUsage: the routing plane's counters of every account reach the account database
// for the days asked, and importing again (with today still counting) sets, never adds.
func TestImportUsage(t *testing.T) {
	client := newValkeyClient(t)
	dialects(t, func(t *testing.T, st full, _ string) {
		ctx := t.Context()
		prefix := "import-" + store.NewID()
		us := st.(UsageStore)
		ada, err := st.CreateAccount(ctx, store.Account{Email: "ada@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		bob, err := st.CreateAccount(ctx, store.Account{Email: "bob@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		today, yesterday, old := now.Format(time.DateOnly), now.AddDate(0, 0, -1).Format(time.DateOnly), now.AddDate(0, 0, -2).Format(time.DateOnly)
		m := usage.New(client, prefix, nil)
		record := func(user string, prompt, completion int) {
			t.Helper()
			if err := m.Record(ctx, user, wire.Usage{PromptTokens: prompt, CompletionTokens: completion}); err != nil {
				t.Fatal(err)
			}
		}
		record(ada.ID, 10, 5)
		record(ada.ID, 1, 2)
		record(bob.ID, 7, 0)
		hset := func(user, day string, requests, prompt, completion int64) {
			t.Helper()
			key := prefix + ":{" + user + "}:usage:" + day
			err := client.Do(ctx, client.B().Hset().Key(key).FieldValue().FieldValue("requests", itoa(requests)).
				FieldValue("prompt_tokens", itoa(prompt)).FieldValue("completion_tokens", itoa(completion)).Build()).Error()
			if err != nil {
				t.Fatal(err)
			}
		}
		hset(ada.ID, yesterday, 4, 100, 50)
		hset(ada.ID, old, 9, 9, 9) // outside the two days asked
		hset("not-an-account", today, 1, 1, 1)

		check := func(what string, user string, want []store.UsageDay) {
			t.Helper()
			got, err := st.Usage(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				got = nil
			}
			eq(t, what, got, want)
		}
		for range 2 {
			if err := ImportUsage(ctx, us, client, prefix, 2); err != nil {
				t.Fatalf("ImportUsage: %v", err)
			}
		}
		check("ada", ada.ID, []store.UsageDay{day(ada.ID, yesterday, 4, 150), day(ada.ID, today, 2, 18)})
		check("bob", bob.ID, []store.UsageDay{day(bob.ID, today, 1, 7)})

		record(bob.ID, 3, 3)
		if err := ImportUsage(ctx, us, client, prefix, 2); err != nil {
			t.Fatalf("ImportUsage: %v", err)
		}
		check("bob after more use", bob.ID, []store.UsageDay{day(bob.ID, today, 2, 13)})

		// A day whose counters expired keeps what was imported.
		if err := usage.Forget(ctx, client, prefix, ada.ID, now); err != nil {
			t.Fatal(err)
		}
		if err := ImportUsage(ctx, us, client, prefix, 2); err != nil {
			t.Fatalf("ImportUsage: %v", err)
		}
		check("ada after expiry", ada.ID, []store.UsageDay{day(ada.ID, yesterday, 4, 150), day(ada.ID, today, 2, 18)})

		if err := ImportUsage(ctx, us, client, prefix, 0); err == nil {
			t.Error("ImportUsage with 0 days: no error")
		}
	})
}

// TestUsageLoop: Run imports at once and then every period, and returns when its context ends.
func TestUsageLoop(t *testing.T) {
	client := newValkeyClient(t)
	dialects(t, func(t *testing.T, st full, _ string) {
		prefix := "loop-" + store.NewID()
		a, err := st.CreateAccount(t.Context(), store.Account{Email: "loop@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		m := usage.New(client, prefix, nil)
		if err := m.Record(t.Context(), a.ID, wire.Usage{PromptTokens: 1}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		loop := &Usage{Store: st.(UsageStore), Client: client, Prefix: prefix, Every: 20 * time.Millisecond}
		go func() { done <- loop.Run(ctx) }()
		// Wait for the first import, then for a later one that sees a second request.
		waitRequests := func(want int64) {
			t.Helper()
			deadline := time.After(10 * time.Second)
			for {
				u, err := st.Usage(t.Context(), a.ID)
				if err != nil {
					t.Fatal(err)
				}
				if len(u) == 1 && u[0].Requests == want {
					return
				}
				select {
				case <-deadline:
					t.Fatalf("usage %+v: want %d requests", u, want)
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		waitRequests(1)
		if err := m.Record(t.Context(), a.ID, wire.Usage{PromptTokens: 1}); err != nil {
			t.Fatal(err)
		}
		waitRequests(2)
		cancel()
		select {
		case err := <-done:
			if err != context.Canceled {
				t.Errorf("Run: %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	})
}

func day(id, d string, requests, tokens int64) store.UsageDay {
	return store.UsageDay{AccountID: id, Day: d, Requests: requests, Tokens: tokens}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}
