package usage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	wire "github.com/codingplan/codingplan/shared"
)

type target struct {
	name   string
	client valkey.Client
}

// targets returns the Valkey deployments named by the environment plus the in-memory mode.
func targets(t *testing.T) []target {
	t.Helper()
	ts := []target{{"memory", nil}}
	for _, e := range []struct{ name, env string }{
		{"single", "CODINGPLAN_TEST_VALKEY"},
		{"cluster", "CODINGPLAN_TEST_VALKEY_CLUSTER"},
	} {
		addr := os.Getenv(e.env)
		if addr == "" {
			if os.Getenv("CODINGPLAN_REQUIRE_VALKEY") == "1" {
				t.Fatalf("CODINGPLAN_REQUIRE_VALKEY=1 but %s is not set", e.env)
			}
			t.Logf("%s not set: %s Valkey not tested", e.env, e.name)
			continue
		}
		c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
		if err != nil {
			t.Fatalf("valkey %s: %v", addr, err)
		}
		t.Cleanup(c.Close)
		ts = append(ts, target{e.name, c})
	}
	return ts
}

func testPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "cptest:" + hex.EncodeToString(b[:])
}

func TestKey(t *testing.T) {
	day := time.Date(2025, 3, 9, 23, 30, 0, 0, time.FixedZone("x", -2*3600)) // 2025-03-10 01:30 UTC
	if got, want := key("p", "alice", day), "p:{alice}:usage:2025-03-10"; got != want {
		t.Errorf("key = %q, want %q", got, want)
	}
}

func TestParseDay(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"2025-03-10", time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC), false},
		{"2025-3-10", time.Time{}, true},
		{"", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := ParseDay(tt.in)
		if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
			t.Errorf("ParseDay(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestRecordAndDay(t *testing.T) {
	day1 := time.Date(2025, 3, 10, 23, 59, 0, 0, time.UTC)
	day2 := day1.Add(2 * time.Minute) // the next UTC day
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := context.Background()
			prefix := testPrefix()
			m := New(tg.client, prefix, nil)
			clock := day1
			m.now = func() time.Time { return clock }
			records := []struct {
				at   time.Time
				user string
				u    wire.Usage
			}{
				{day1, "alice", wire.Usage{PromptTokens: 100, CompletionTokens: 20}},
				{day1, "alice", wire.Usage{PromptTokens: 5, CompletionTokens: 1}},
				{day1, "bob", wire.Usage{PromptTokens: 7}},
				{day1, "bob", wire.Usage{PromptTokens: -3, CompletionTokens: -1}}, // counts as a request only
				{day2, "alice", wire.Usage{PromptTokens: 1, CompletionTokens: 2}},
			}
			for _, r := range records {
				clock = r.at
				if err := m.Record(ctx, r.user, r.u); err != nil {
					t.Fatalf("record: %v", err)
				}
			}
			tests := []struct {
				user string
				day  time.Time
				want Counts
			}{
				{"alice", day1, Counts{2, 105, 21}},
				{"alice", day2, Counts{1, 1, 2}},
				{"bob", day1, Counts{2, 7, 0}},
				{"bob", day2, Counts{}},
				{"carol", day1, Counts{}},
			}
			for _, tt := range tests {
				got, err := m.Day(ctx, tt.user, tt.day)
				if err != nil {
					t.Fatalf("day: %v", err)
				}
				if got != tt.want {
					t.Errorf("Day(%s, %s) = %+v, want %+v", tt.user, tt.day.Format(dayLayout), got, tt.want)
				}
			}
			if tg.client == nil {
				return
			}
			// The hash holds the three counters and nothing else, and expires within TTL.
			k := key(prefix, "alice", day1)
			t.Cleanup(func() {
				for _, u := range []string{"alice", "bob"} {
					for _, d := range []time.Time{day1, day2} {
						tg.client.Do(context.Background(), tg.client.B().Del().Key(key(prefix, u, d)).Build())
					}
				}
			})
			fields, err := tg.client.Do(ctx, tg.client.B().Hkeys().Key(k).Build()).AsStrSlice()
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(fields)
			if got, want := fields, []string{fieldCompletion, fieldPrompt, fieldRequests}; !slices.Equal(got, want) {
				t.Errorf("fields = %v, want %v", got, want)
			}
			ttl, err := tg.client.Do(ctx, tg.client.B().Ttl().Key(k).Build()).AsInt64()
			if err != nil {
				t.Fatal(err)
			}
			if max := int64(TTL / time.Second); ttl <= max-60 || ttl > max {
				t.Errorf("TTL = %ds, want about %ds", ttl, max)
			}
		})
	}
}

// TestConcurrentRecords: concurrent records from many goroutines all count.
func TestConcurrentRecords(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := context.Background()
			prefix := testPrefix()
			m := New(tg.client, prefix, nil)
			const n = 200
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					if err := m.Record(ctx, "u", wire.Usage{PromptTokens: 3, CompletionTokens: 2}); err != nil {
						t.Errorf("record: %v", err)
					}
				})
			}
			wg.Wait()
			now := m.now()
			if tg.client != nil {
				t.Cleanup(func() { tg.client.Do(context.Background(), tg.client.B().Del().Key(key(prefix, "u", now)).Build()) })
			}
			got, err := m.Day(ctx, "u", now)
			if err != nil {
				t.Fatal(err)
			}
			if want := (Counts{n, 3 * n, 2 * n}); got != want {
				t.Errorf("counts = %+v, want %+v", got, want)
			}
		})
	}
}

func TestEmptyUser(t *testing.T) {
	m := New(nil, "", nil)
	if err := m.Record(context.Background(), "", wire.Usage{}); !errors.Is(err, ErrNoUser) {
		t.Errorf("record: err = %v, want ErrNoUser", err)
	}
	if _, err := m.Day(context.Background(), "", time.Now()); !errors.Is(err, ErrNoUser) {
		t.Errorf("day: err = %v, want ErrNoUser", err)
	}
}

// TestMemoryPrune: in memory, days older than TTL are dropped.
func TestMemoryPrune(t *testing.T) {
	m := New(nil, "", nil)
	old := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return old }
	_ = m.Record(context.Background(), "u", wire.Usage{PromptTokens: 1})
	later := old.Add(TTL + 48*time.Hour)
	m.now = func() time.Time { return later }
	_ = m.Record(context.Background(), "u", wire.Usage{PromptTokens: 1})
	if got, _ := m.Day(context.Background(), "u", old); got != (Counts{}) {
		t.Errorf("old day = %+v, want it pruned", got)
	}
	if got, _ := m.Day(context.Background(), "u", later); got != (Counts{1, 1, 0}) {
		t.Errorf("new day = %+v, want one request", got)
	}
}
