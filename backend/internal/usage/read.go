package usage

import (
	"context"
	"fmt"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Read returns the counts of each of users for the UTC day that contains day, in the order of
// users (zero for a user with nothing recorded), in one pipelined batch of HMGETs: the account
// plane's import reads every account this way. prefix "" is "codingplan".
func Read(ctx context.Context, client valkey.Client, prefix string, users []string, day time.Time) ([]Counts, error) {
	if prefix == "" {
		prefix = "codingplan"
	}
	cmds := make(valkey.Commands, len(users))
	for i, u := range users {
		if u == "" {
			return nil, ErrNoUser
		}
		cmds[i] = client.B().Hmget().Key(key(prefix, u, day)).Field(fieldRequests, fieldPrompt, fieldCompletion).Build()
	}
	out := make([]Counts, len(users))
	for i, r := range client.DoMulti(ctx, cmds...) {
		vals, err := r.ToArray()
		if err != nil {
			return nil, fmt.Errorf("usage: read: %w", err)
		}
		if out[i], err = countsOf(vals); err != nil {
			return nil, fmt.Errorf("usage: read: %w", err)
		}
	}
	return out, nil
}

// countsOf reads an HMGET of the three fields; a missing field is 0.
func countsOf(vals []valkey.ValkeyMessage) (Counts, error) {
	var n [3]int64
	for i, v := range vals {
		if i >= len(n) || v.IsNil() {
			continue
		}
		var err error
		if n[i], err = v.AsInt64(); err != nil {
			return Counts{}, fmt.Errorf("field %d: %w", i, err)
		}
	}
	return Counts{Requests: n[0], PromptTokens: n[1], CompletionTokens: n[2]}, nil
}
