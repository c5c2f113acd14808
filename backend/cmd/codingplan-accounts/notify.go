package main

import (
	"context"
	"fmt"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/accounts"
	"github.com/codingplan/codingplan/backend/internal/revoke"
	"github.com/codingplan/codingplan/backend/internal/valkeyconn"
)

// noValkey says what an unset valkey setting means for revocations.
const noValkey = "valkey is not set: revocations and plan changes reach the routing plane only when the tokens expire (access_ttl)"

// publisher is the server's and the admin commands' accounts.Notifier: it publishes to the
// routing plane's Valkey through package revoke (docs/operations.md, "Revocation").
type publisher struct {
	client valkey.Client
	prefix string
	ttl    time.Duration
	now    func() time.Time
}

// dialValkey connects to the routing plane's Valkey; nil, nil when none is configured.
func dialValkey(s *accounts.Settings, getenv func(string) string) (valkey.Client, error) {
	vc := s.ValkeyConn()
	if len(vc.Addrs) == 0 {
		return nil, nil
	}
	opt, err := valkeyconn.Options(vc, getenv)
	if err != nil {
		return nil, err
	}
	client, err := valkey.NewClient(opt)
	if err != nil {
		if cause := valkeyconn.Cause(vc, err); cause != "" {
			return nil, fmt.Errorf("valkey (%s): %w", cause, err)
		}
		return nil, fmt.Errorf("valkey: %w", err)
	}
	return client, nil
}

func newPublisher(s *accounts.Settings, client valkey.Client) *publisher {
	return &publisher{client: client, prefix: s.ValkeyPrefix, ttl: s.RevocationTTL, now: time.Now}
}

func (p *publisher) publish(ctx context.Context, e revoke.Event) error {
	e.At = p.now().UnixMilli()
	_, err := revoke.Publish(ctx, p.client, p.prefix, e, p.ttl)
	return err
}

// Revoke refuses the account's tokens issued until now, or only those of the sign-in or API
// key sid.
func (p *publisher) Revoke(ctx context.Context, accountID, sid string) error {
	return p.publish(ctx, revoke.Event{Sub: accountID, SID: sid, Kind: revoke.KindRevoke})
}

// Plan moves the account's open sockets and current tokens to plan; no plan is a revocation.
func (p *publisher) Plan(ctx context.Context, accountID, plan string) error {
	if plan == "" {
		return p.Revoke(ctx, accountID, "")
	}
	return p.publish(ctx, revoke.Event{Sub: accountID, Kind: revoke.KindPlan, Plan: plan})
}
