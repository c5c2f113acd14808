package accounts

import (
	"context"
	"errors"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// Export is every row the account database holds about one account, for a data-subject access
// request (GDPR art. 15): what `account export` prints and the account page's download. Secrets
// stay out: API keys and sign-ins are shown by id, prefix and dates (the database has only their
// hashes), and the password only as whether one is set. Web sessions, pending device codes and
// mailed links live at most a few days and are not listed.
type Export struct {
	Exported time.Time     `json:"exported"`
	Account  ExportAccount `json:"account"`
	Password bool          `json:"password_set"`
	Keys     []KeyView     `json:"api_keys"`
	Signins  []SigninView  `json:"signins"`
	Usage    []UsageDay    `json:"usage"`
}

// ExportAccount is the account row in an Export, billing ids included.
type ExportAccount struct {
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

// ExportStore is what NewExport reads.
type ExportStore interface {
	PasswordHash(ctx context.Context, accountID string) (string, error)
	ListAPIKeys(ctx context.Context, accountID string) ([]store.APIKey, error)
	ListFamilies(ctx context.Context, accountID string) ([]store.Family, error)
	Usage(ctx context.Context, accountID string) ([]store.UsageDay, error)
}

// NewExport reads the export of account a at time now.
func NewExport(ctx context.Context, d ExportStore, a store.Account, now time.Time) (Export, error) {
	x := Export{Exported: now.UTC().Truncate(time.Second), Account: ExportAccount{
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
	x.Keys = ViewKeys(keys)
	fams, err := d.ListFamilies(ctx, a.ID)
	if err != nil {
		return x, err
	}
	x.Signins = ViewSignins(fams)
	u, err := d.Usage(ctx, a.ID)
	if err != nil {
		return x, err
	}
	x.Usage = ViewAccount(a, u).Usage
	return x, nil
}
