package usage

import (
	"reflect"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	wire "github.com/codingplan/codingplan/shared"
)

// TestRead: one batch returns each user's counts of a day, as Day does, zero for the unknown,
// on a private Valkey and on the ones the environment names (a cluster spreads the users over
// slots).
func TestRead(t *testing.T) {
	vk := valkeytest.Start(t)
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{vk.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ts := append([]target{{"private", c}}, targets(t)[1:]...)
	for _, tg := range ts {
		t.Run(tg.name, func(t *testing.T) {
			ctx := t.Context()
			prefix := testPrefix()
			m := New(tg.client, prefix, nil)
			day := time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)
			m.now = func() time.Time { return day }
			users := []string{"a", "b", "nobody", "c"}
			for i, u := range []string{"a", "b", "a", "c"} {
				if err := m.Record(ctx, u, wire.Usage{PromptTokens: 10 * (i + 1), CompletionTokens: i}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Read(ctx, tg.client, prefix, users, day.Add(-12*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			want := []Counts{{2, 40, 2}, {1, 20, 1}, {}, {1, 40, 3}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Read:\n got %+v\nwant %+v", got, want)
			}
			for i, u := range users {
				if d, err := m.Day(ctx, u, day); err != nil || d != want[i] {
					t.Errorf("Day(%s) = %+v, %v; want %+v as Read", u, d, err, want[i])
				}
			}
			if got, err := Read(ctx, tg.client, prefix, users, day.AddDate(0, 0, 1)); err != nil || !reflect.DeepEqual(got, make([]Counts, 4)) {
				t.Errorf("Read of the next day: %+v %v, want zeros", got, err)
			}
			if got, err := Read(ctx, tg.client, prefix, nil, day); err != nil || len(got) != 0 {
				t.Errorf("Read of no users: %+v %v", got, err)
			}
			if _, err := Read(ctx, tg.client, prefix, []string{"a", ""}, day); err != ErrNoUser {
				t.Errorf("Read with an empty user: %v, want ErrNoUser", err)
			}
		})
	}
}
