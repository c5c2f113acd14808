// Package usage meters each user's requests and tokens per UTC day, without any content.
//
// One Valkey hash per user and day, <prefix>:{<user>}:usage:<YYYY-MM-DD>, holds three counters
// (requests, prompt_tokens, completion_tokens). One Lua script adds to all three and sets the
// key to expire after TTL, so old days disappear on their own. Without Valkey the Meter counts
// in memory for the life of the process.
package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"

	wire "github.com/codingplan/codingplan/shared"
)

// TTL is how long a day's counters are kept after its last update.
const TTL = 35 * 24 * time.Hour

// dayLayout names a UTC day in keys and in the CLI.
const dayLayout = "2006-01-02"

// Fields of the per-day hash.
const (
	fieldRequests   = "requests"
	fieldPrompt     = "prompt_tokens"
	fieldCompletion = "completion_tokens"
)

// ErrNoUser: a user id is required.
var ErrNoUser = errors.New("usage: empty user")

// Counts is one user's use in one UTC day.
type Counts struct {
	Requests         int64 `json:"requests"`
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

// recordScript adds one request and its token counts to a day and renews the day's TTL.
// KEYS: the day's hash; ARGV: [1] prompt tokens, [2] completion tokens, [3] TTL seconds.
// Not retryable: a retry after a lost reply would count the request twice.
var recordScript = valkey.NewLuaScript(`
redis.call('HINCRBY', KEYS[1], '` + fieldRequests + `', 1)
redis.call('HINCRBY', KEYS[1], '` + fieldPrompt + `', ARGV[1])
redis.call('HINCRBY', KEYS[1], '` + fieldCompletion + `', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
`)

// key builds every key of this package: <prefix>:{<user>}:usage:<YYYY-MM-DD>, sharing the user's
// hash tag with the lease keys.
func key(prefix, user string, day time.Time) string {
	return prefix + ":{" + user + "}:usage:" + day.UTC().Format(dayLayout)
}

// ParseDay reads a YYYY-MM-DD day as UTC midnight.
func ParseDay(s string) (time.Time, error) {
	d, err := time.Parse(dayLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("usage: day %q: want YYYY-MM-DD", s)
	}
	return d, nil
}

// Meter records usage. It is safe for concurrent use.
type Meter struct {
	client valkey.Client // nil: in memory
	prefix string
	log    *slog.Logger
	now    func() time.Time

	mu     sync.Mutex
	mem    map[memKey]Counts
	pruned string // the day mem was last pruned
}

type memKey struct{ user, day string }

// New returns a Meter writing to client under prefix ("codingplan" when empty), or counting in
// memory when client is nil.
func New(client valkey.Client, prefix string, log *slog.Logger) *Meter {
	if prefix == "" {
		prefix = "codingplan"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Meter{client: client, prefix: prefix, log: log, now: time.Now, mem: map[memKey]Counts{}}
}

// Record counts one request of user and its tokens in the current UTC day. Negative counts
// count as zero. The caller decides whether a failure matters; it never carries content.
func (m *Meter) Record(ctx context.Context, user string, u wire.Usage) error {
	if user == "" {
		return ErrNoUser
	}
	now := m.now()
	prompt, completion := max(int64(u.PromptTokens), 0), max(int64(u.CompletionTokens), 0)
	if m.client == nil {
		m.recordMem(user, now, prompt, completion)
		return nil
	}
	err := recordScript.Exec(ctx, m.client, []string{key(m.prefix, user, now)}, []string{
		strconv.FormatInt(prompt, 10), strconv.FormatInt(completion, 10),
		strconv.FormatInt(int64(TTL/time.Second), 10),
	}).Error()
	if err != nil {
		return fmt.Errorf("usage: record: %w", err)
	}
	return nil
}

// Day returns user's counts for the UTC day that contains day; zero when nothing was recorded.
func (m *Meter) Day(ctx context.Context, user string, day time.Time) (Counts, error) {
	if user == "" {
		return Counts{}, ErrNoUser
	}
	if m.client == nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.mem[memKey{user, day.UTC().Format(dayLayout)}], nil
	}
	vals, err := m.client.Do(ctx, m.client.B().Hmget().Key(key(m.prefix, user, day)).
		Field(fieldRequests, fieldPrompt, fieldCompletion).Build()).ToArray()
	if err != nil {
		return Counts{}, fmt.Errorf("usage: day: %w", err)
	}
	c, err := countsOf(vals)
	if err != nil {
		return Counts{}, fmt.Errorf("usage: day: %w", err)
	}
	return c, nil
}

// recordMem counts in memory and drops days older than TTL once per day.
func (m *Meter) recordMem(user string, now time.Time, prompt, completion int64) {
	day := now.UTC().Format(dayLayout)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pruned != day {
		oldest := now.Add(-TTL).UTC().Format(dayLayout)
		for k := range m.mem {
			if k.day < oldest {
				delete(m.mem, k)
			}
		}
		m.pruned = day
	}
	k := memKey{user, day}
	c := m.mem[k]
	c.Requests++
	c.PromptTokens += prompt
	c.CompletionTokens += completion
	m.mem[k] = c
}

// Forget deletes every counter of user still kept (the days of the last TTL), for an account's
// deletion. The keys share the user's hash tag, so one DEL serves a cluster too.
func Forget(ctx context.Context, client valkey.Client, prefix, user string, now time.Time) error {
	if user == "" {
		return ErrNoUser
	}
	if prefix == "" {
		prefix = "codingplan"
	}
	days := int(TTL/(24*time.Hour)) + 2
	keys := make([]string, 0, days+1)
	for d := -days; d <= 1; d++ {
		keys = append(keys, key(prefix, user, now.AddDate(0, 0, d)))
	}
	if err := client.Do(ctx, client.B().Del().Key(keys...).Build()).Error(); err != nil {
		return fmt.Errorf("usage: forget: %w", err)
	}
	return nil
}
