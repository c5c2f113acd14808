package main

import (
	"context"
	"time"

	"github.com/codingplan/codingplan/backend/internal/accounts"
	"github.com/codingplan/codingplan/backend/internal/store"
)

// accountExport is `account export ID|EMAIL`: the account's data (accounts.Export) as JSON on
// stdout.
func (c *cli) accountExport(args []string) error {
	return c.onAccount(c.flags("account export"), args, 1, func(ctx context.Context, s *accounts.Settings, d db, a store.Account, pos []string) error {
		x, err := accounts.NewExport(ctx, d, a, time.Now())
		if err != nil {
			return err
		}
		return c.json(x)
	})
}
