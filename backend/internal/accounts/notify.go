package accounts

import (
	"context"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// entitled reports whether an account with this plan and status may have tokens (as the
// tokens package decides).
func entitled(plan, status string) bool {
	return plan != "" && (status == store.StatusActive || status == store.StatusPastDue)
}

// Announce tells the routing plane of an account's change from (oldPlan, oldStatus) to
// (newPlan, newStatus): a revocation of all its tokens when it loses access (suspended,
// canceled, no plan any more), the new plan when it has access on another plan than before,
// nothing otherwise (a resumed account needs no message: the tokens issued before its
// suspension stay refused, new ones carry the current plan).
func Announce(ctx context.Context, n Notifier, accountID, oldPlan, oldStatus, newPlan, newStatus string) error {
	before, after := entitled(oldPlan, oldStatus), entitled(newPlan, newStatus)
	switch {
	case before && !after:
		return n.Revoke(ctx, accountID, "")
	case after && oldPlan != newPlan:
		return n.Plan(ctx, accountID, newPlan)
	}
	return nil
}
