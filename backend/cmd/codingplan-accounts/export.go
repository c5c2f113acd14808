package main

import (
	"context"
	"errors"
	"time"

	"github.com/codingplan/codingplan/backend/internal/accounts"
	"github.com/codingplan/codingplan/backend/internal/store"
)

// export is what `account export` prints: every row the account database holds about one
// account, for a data-subject access request (GDPR art. 15). Secrets stay out: API keys and
// sign-ins are shown by id, prefix and dates (the database has only their hashes), and the
// password only as whether one is set. Web sessions and pending device codes live at most a
// few days and are not listed.
type export struct {
	Exported time.Time             `json:"exported"`
	Account  exportAccount         `json:"account"`
	Password bool                  `json:"password_set"`
	Keys     []accounts.KeyView    `json:"api_keys"`
	Signins  []accounts.SigninView `json:"signins"`
	Usage    []accounts.UsageDay   `json:"usage"`
}

type exportAccount struct {
	ID              string     `json:"id"`
	Email           string     `json:"email"`
	Name            string     `json:"name"`
	Created         time.Time  `json:"created"`
	Plan            string     `json:"plan"`
	Status          string     `json:"status"`
	BillingProvider string     `json:"billing_provider"`
	CustomerID      string     `json:"customer_id"`
	SubscriptionID  string     `json:"subscription_id"`
	BillingUpdated  *time.Time `json:"billing_updated,omitempty"`
}

// accountExport is `account export ID|EMAIL`: the account's data as JSON on stdout.
func (c *cli) accountExport(args []string) error {
	return c.onAccount(c.flags("account export"), args, 1, func(ctx context.Context, s *accounts.Settings, d db, a store.Account, pos []string) error {
		x, err := exportOf(ctx, d, a)
		if err != nil {
			return err
		}
		return c.json(x)
	})
}

func exportOf(ctx context.Context, d db, a store.Account) (export, error) {
	x := export{Exported: time.Now().UTC().Truncate(time.Second), Account: exportAccount{
		ID: a.ID, Email: a.Email, Name: a.Name, Created: a.Created, Plan: a.Plan, Status: a.Status,
		BillingProvider: a.BillingProvider, CustomerID: a.CustomerID, SubscriptionID: a.SubscriptionID,
	}}
	if !a.BillingUpdated.IsZero() {
		x.Account.BillingUpdated = &a.BillingUpdated
	}
	switch _, err := d.PasswordHash(ctx, a.ID); {
	case err == nil:
		x.Password = true
	case !errors.Is(err, store.ErrNotFound):
		return x, err
	}
	keys, err := d.ListAPIKeys(ctx, a.ID)
	if err != nil {
		return x, err
	}
	x.Keys = accounts.ViewKeys(keys)
	fams, err := d.ListFamilies(ctx, a.ID)
	if err != nil {
		return x, err
	}
	x.Signins = accounts.ViewSignins(fams)
	u, err := d.Usage(ctx, a.ID)
	if err != nil {
		return x, err
	}
	x.Usage = accounts.ViewAccount(a, u).Usage
	return x, nil
}
