// Package revoke carries revocations and plan changes from the account service to every
// backend node through the routing plane's Valkey, and checks tokens against them.
//
// The contract (docs/operations.md, "Revocation"): Publish sets a denylist key with a TTL and
// publishes an Event on the channel <prefix>:revocations, in one script; a Watcher on each node
// hands the events to the gateway, which closes the sockets they name; Check, at every upgrade
// and auth frame, refuses tokens a node never heard about (it was restarted or cut off). Only
// ids and times go through Valkey, and plan names.
package revoke

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Kinds of Event.
const (
	// KindRevoke ends access: the account's tokens (or those of one sign-in or key, when the
	// event names a sid) issued at or before At are refused and their sockets closed.
	KindRevoke = "revoke"
	// KindPlan changes the account's plan: open sockets get the new plan's concurrency, and
	// tokens issued at or before At are served on the new plan.
	KindPlan = "plan"
)

// DefaultTTL is how long the denylist keys live unless the publisher says otherwise: the
// longest access token lifetime (15 minutes) plus leeway. A publisher whose tokens live longer
// must pass a longer TTL.
const DefaultTTL = 20 * time.Minute

// ErrInvalid marks an Event that does not follow the contract.
var ErrInvalid = errors.New("revoke: invalid event")

// Event is one message on the channel, JSON-encoded.
type Event struct {
	Sub  string `json:"sub"`            // the account id (the tokens' sub)
	SID  string `json:"sid,omitempty"`  // for revoke: only tokens whose sid claim is this
	Kind string `json:"kind"`           // KindRevoke or KindPlan
	Plan string `json:"plan,omitempty"` // for plan: the new plan's name
	At   int64  `json:"at"`             // when it happened, Unix milliseconds
}

// Validate checks e against the contract.
func (e Event) Validate() error {
	bad := func(why string) error { return fmt.Errorf("%w: %s", ErrInvalid, why) }
	switch {
	case e.Sub == "":
		return bad("no sub")
	case strings.ContainsAny(e.Sub, "{}"), strings.ContainsAny(e.SID, "{}"):
		return bad("braces in sub or sid") // they would move the key to another slot
	case e.At <= 0:
		return bad("no at")
	}
	switch e.Kind {
	case KindRevoke:
		if e.Plan != "" {
			return bad("plan in a revoke event")
		}
	case KindPlan:
		if e.Plan == "" || strings.ContainsAny(e.Plan, " \t\r\n") {
			return bad("a plan event needs a plan name without spaces")
		}
		if e.SID != "" {
			return bad("sid in a plan event")
		}
	default:
		return bad("unknown kind")
	}
	return nil
}

// Channel is the pub/sub channel of the routing plane whose keys start with prefix. It is a
// plain channel: PUBLISH reaches the subscribers of every node of a cluster.
func Channel(prefix string) string { return prefix + ":revocations" }

// key builds every key of this package: <prefix>:{<sub>}:<suffix>, so that one account's
// keys share a cluster slot (and those of the lease pool and usage counts).
func key(prefix, sub, suffix string) string { return prefix + ":{" + sub + "}:" + suffix }

// subjectKey holds the time (Unix ms) at or before which the account's tokens were revoked.
func subjectKey(prefix, sub string) string { return key(prefix, sub, "revoked") }

// sidKey exists while the tokens carrying sid are revoked; it holds the revocation's time.
func sidKey(prefix, sub, sid string) string { return key(prefix, sub, "revoked:"+sid) }

// planKey holds "<at> <plan>": the account's plan since at (Unix ms).
func planKey(prefix, sub string) string { return key(prefix, sub, "plan") }

// publishScript sets KEYS[1] to ARGV[5] with a TTL of ARGV[2] ms unless it holds a later
// time already (events may be published out of order), then publishes ARGV[4] on channel
// ARGV[3]. One script, so a node that gets the message finds the key set.
var publishScript = valkey.NewLuaScript(`
local cur = redis.call('GET', KEYS[1])
local at = tonumber(ARGV[1])
local curAt = cur and tonumber(string.match(cur, '^%d+')) or 0
if curAt <= at then
  redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[2])
end
return redis.call('PUBLISH', ARGV[3], ARGV[4])
`)

// Publish records e in the denylist (or, for a plan change, the plan key) for ttl
// (DefaultTTL when zero) and publishes it; it returns how many subscribers got it (on a
// cluster: those of the node that ran the script). This is the publisher's side, for the
// account service and tests.
func Publish(ctx context.Context, client valkey.Client, prefix string, e Event, ttl time.Duration) (int64, error) {
	if err := e.Validate(); err != nil {
		return 0, err
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	msg, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	at := strconv.FormatInt(e.At, 10)
	k, value := subjectKey(prefix, e.Sub), at
	switch {
	case e.Kind == KindPlan:
		k, value = planKey(prefix, e.Sub), at+" "+e.Plan
	case e.SID != "":
		k = sidKey(prefix, e.Sub, e.SID)
	}
	n, err := publishScript.Exec(ctx, client, []string{k},
		[]string{at, strconv.FormatInt(ttl.Milliseconds(), 10), Channel(prefix), string(msg), value}).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("revoke: publish: %w", err)
	}
	return n, nil
}

// Status is what Check found about a token.
type Status struct {
	// Revoked: the account's tokens issued at or before a revocation, or the token's sid,
	// were revoked.
	Revoked bool
	// Plan is the account's plan when it changed at or after the token was issued; "" when
	// the token's own plan claim holds.
	Plan string
}

// Checker reads the denylist. It is safe for concurrent use.
type Checker struct {
	client valkey.Client
	prefix string
}

// NewChecker returns a Checker of the keys under prefix.
func NewChecker(client valkey.Client, prefix string) *Checker {
	return &Checker{client: client, prefix: prefix}
}

// Check says whether the token of sub with sid ("" when it has none) issued at issued (the
// zero time when it has no iat) was revoked, and the account's plan if it changed since. One
// round trip: an MGET of keys in one slot.
func (c *Checker) Check(ctx context.Context, sub, sid string, issued time.Time) (Status, error) {
	keys := []string{subjectKey(c.prefix, sub), planKey(c.prefix, sub)}
	if sid != "" {
		keys = append(keys, sidKey(c.prefix, sub, sid))
	}
	vals, err := c.client.Do(ctx, c.client.B().Mget().Key(keys...).Build()).ToArray()
	if err != nil {
		return Status{}, fmt.Errorf("revoke: check: %w", err)
	}
	if len(vals) != len(keys) {
		return Status{}, fmt.Errorf("revoke: check: %d values for %d keys", len(vals), len(keys))
	}
	iat := int64(0)
	if !issued.IsZero() {
		iat = issued.UnixMilli()
	}
	var st Status
	if at, _, ok := value(vals[0]); ok && iat <= at {
		st.Revoked = true
	}
	if at, plan, ok := value(vals[1]); ok && iat <= at && plan != "" {
		st.Plan = plan
	}
	if len(vals) > 2 {
		if _, _, ok := value(vals[2]); ok {
			st.Revoked = true
		}
	}
	return st, nil
}

// value parses "<at>" or "<at> <plan>"; ok is false for a missing key. A value that does not
// parse counts as a time after every token (the safe side for a denylist).
func value(m valkey.ValkeyMessage) (at int64, plan string, ok bool) {
	s, err := m.ToString()
	if err != nil {
		return 0, "", false // nil: no such key
	}
	num, plan, _ := strings.Cut(s, " ")
	at, err = strconv.ParseInt(num, 10, 64)
	if err != nil {
		at = 1<<63 - 1
	}
	return at, plan, true
}
