package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// ErrNotLinked: the event names an account as its checkout reference but carries no email, and
// no account is linked to its customer yet: it arrived before the event that links them (a
// Stripe subscription event before checkout.session.completed). Nothing changed; answer 5xx
// so that the provider delivers it again later.
var ErrNotLinked = errors.New("billing: customer not linked to an account yet")

// Store is what Apply needs of the account store.
type Store interface {
	// MarkEvent records a provider's event id; fresh is false when it was recorded before.
	MarkEvent(ctx context.Context, provider, eventID string, at time.Time) (fresh bool, err error)
	// AccountByCustomer and AccountByEmail (case-insensitive) return store.ErrNotFound,
	// wrapped or not, when no account matches.
	AccountByCustomer(ctx context.Context, provider, customerID string) (store.Account, error)
	AccountByEmail(ctx context.Context, email string) (store.Account, error)
	// UpdateAccount, not the store's UpdateBilling: that one applies only events strictly
	// later than the stored time, and Apply's same-second rule (stage) needs to write one at
	// the same time.
	UpdateAccount(ctx context.Context, a store.Account) error
}

// Outcome says what Apply did with a Change.
type Outcome string

const (
	// Applied: the account now holds the Change's state (its plan or status may be unchanged).
	Applied Outcome = "applied"
	// Duplicate: the event was applied before; nothing changed.
	Duplicate Outcome = "duplicate"
	// Stale: the account already holds a later state of the subscription; nothing changed.
	Stale Outcome = "stale"
	// Unmatched: no account has this customer, and none can be linked by the event's email;
	// nothing changed.
	Unmatched Outcome = "unmatched"
	// OtherSubscription: the account is paid through another subscription, and this event
	// would not give it a plan; nothing changed.
	OtherSubscription Outcome = "other_subscription"
)

// Result is what Apply did, for the caller to log and to publish plan changes and revocations.
type Result struct {
	Outcome   Outcome
	AccountID string // "" when Unmatched
	// Linked: the account was found by the event's email and is now linked to its customer.
	Linked bool
	// Unmapped: the status gives a plan, but no price or product id of the event is in the
	// configured Plans, so the account got none.
	Unmapped bool
	// Reason says why an Unmatched or OtherSubscription changed nothing.
	Reason               string
	OldPlan, NewPlan     string
	OldStatus, NewStatus string
}

// PlanChanged reports whether the account's plan changed: publish the new plan (or, when
// NewPlan is "", a revocation) to the routing plane.
func (r Result) PlanChanged() bool { return r.Outcome == Applied && r.OldPlan != r.NewPlan }

// Apply brings an account to the state a Change describes, at most once per event and never
// backwards in time:
//
//   - The event id is marked first; an id seen before changes nothing, unless the account
//     has not reached the event's time yet (an earlier delivery was marked, then failed
//     before it was written), in which case it is applied now.
//   - An event older than the account's BillingUpdated changes nothing. Between two states
//     of the same subscription at the same second (Stripe's times are seconds), the later
//     stage wins: incomplete, then the live statuses, then canceled/unpaid/incomplete_expired.
//   - active, trialing and past_due give the mapped plan (past_due is the grace while the
//     provider retries payment; an event naming no price keeps the plan the account has);
//     every other status sets the plan to none ("").
//   - A customer no account has is linked to the account with the event's email, unless the
//     event names another account as its checkout reference, or that account is paid through
//     another customer; otherwise the event is Unmatched. When it has no email but names an
//     account as its checkout reference, Apply also returns ErrNotLinked, so that it is
//     delivered again after the event that links the customer.
//   - An event about a subscription other than the account's, while the account's own gives a
//     plan, applies only if it gives a mapped plan itself (a second purchase).
//
// Errors are the store's; the caller should answer 5xx so that the provider delivers again.
func Apply(ctx context.Context, st Store, c Change, plans PlanMap) (Result, error) {
	if c.Provider == "" || c.EventID == "" || c.CustomerID == "" || c.EventTime.IsZero() {
		return Result{}, errors.New("billing: change without provider, event id, customer or time")
	}
	if c.Plan == "" {
		c.Plan = plans.Plan(c.Prices)
	}
	fresh, err := st.MarkEvent(ctx, c.Provider, c.EventID, c.EventTime)
	if err != nil {
		return Result{}, fmt.Errorf("billing: marking event: %w", err)
	}
	acct, res, err := findAccount(ctx, st, c)
	if err != nil {
		return Result{}, err
	}
	if res.Outcome == Unmatched {
		// Nothing was applied, so a delivery again, marked or not, is handled the same way.
		// Only an event without an email can be linked by a later one (the checkout's).
		if c.AccountRef != "" && strings.TrimSpace(c.Email) == "" {
			return res, fmt.Errorf("%w: %s", ErrNotLinked, res.Reason)
		}
		return res, nil
	}
	res = decide(acct, c, fresh, res.Linked)
	if res.Outcome != Applied {
		return res, nil
	}
	acct.Plan, acct.Status = res.NewPlan, res.NewStatus
	acct.BillingProvider, acct.CustomerID = c.Provider, c.CustomerID
	if c.SubscriptionID != "" {
		acct.SubscriptionID = c.SubscriptionID
	}
	acct.BillingUpdated = c.EventTime
	if err := st.UpdateAccount(ctx, acct); err != nil {
		return Result{}, fmt.Errorf("billing: updating account: %w", err)
	}
	return res, nil
}

// findAccount finds the account of c's customer, or one to link by c's email. A Result with
// Outcome Unmatched says why there is none.
func findAccount(ctx context.Context, st Store, c Change) (store.Account, Result, error) {
	acct, err := st.AccountByCustomer(ctx, c.Provider, c.CustomerID)
	if err == nil {
		return acct, Result{}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.Account{}, Result{}, fmt.Errorf("billing: account by customer: %w", err)
	}
	unmatched := func(why string) (store.Account, Result, error) {
		return store.Account{}, Result{Outcome: Unmatched, Reason: why}, nil
	}
	email := strings.TrimSpace(c.Email)
	if email == "" {
		return unmatched("unknown customer, and the event has no email")
	}
	acct, err = st.AccountByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		return unmatched("unknown customer, and no account has its email")
	}
	if err != nil {
		return store.Account{}, Result{}, fmt.Errorf("billing: account by email: %w", err)
	}
	if c.AccountRef != "" && c.AccountRef != acct.ID {
		return unmatched("the checkout was started for another account than the email's")
	}
	if acct.CustomerID != "" && (acct.BillingProvider != c.Provider || acct.CustomerID != c.CustomerID) && Grants(acct.Status) {
		return unmatched("the email's account is paid through another customer")
	}
	return acct, Result{Linked: true}, nil
}

// decide is Apply's rule for an account found for c; it changes nothing itself.
func decide(acct store.Account, c Change, fresh, linked bool) Result {
	res := Result{AccountID: acct.ID, Linked: linked, OldPlan: acct.Plan, OldStatus: acct.Status}
	sameSub := acct.BillingProvider == c.Provider && (c.SubscriptionID == "" || acct.SubscriptionID == c.SubscriptionID)
	last := acct.BillingUpdated
	switch {
	case !fresh && !c.EventTime.After(last):
		res.Outcome = Duplicate
		return res
	case c.EventTime.Before(last):
		res.Outcome = Stale
		return res
	case c.EventTime.Equal(last) && sameSub && stage(c.Status) < stage(acct.Status):
		res.Outcome = Stale
		return res
	}
	plan := ""
	if Grants(c.Status) {
		plan = c.Plan
		if plan == "" && len(c.Prices) == 0 && sameSub {
			plan = acct.Plan
		}
		res.Unmapped = plan == ""
	}
	if !sameSub && acct.SubscriptionID != "" && Grants(acct.Status) && plan == "" {
		res.Outcome = OtherSubscription
		res.Reason = "the account is paid through another subscription"
		res.Unmapped = false
		return res
	}
	res.Outcome, res.NewPlan, res.NewStatus = Applied, plan, AccountStatus(c.Status)
	if acct.Status == store.StatusSuspended { // an operator's suspension outlasts billing
		res.NewStatus = store.StatusSuspended
	}
	return res
}

// AccountStatus is the account status (store's vocabulary) a subscription status gives:
// active and trialing are active; past_due, and incomplete and paused (not paid yet, no plan),
// are past_due; canceled, unpaid, incomplete_expired and every status not known here are
// canceled. incomplete and paused stay in the middle so that Apply's same-second order (stage)
// reads the same from the stored status.
func AccountStatus(sub string) string {
	switch sub {
	case StatusActive, StatusTrialing:
		return store.StatusActive
	case StatusPastDue, StatusIncomplete, StatusPaused:
		return store.StatusPastDue
	}
	return store.StatusCanceled
}

// stage orders a subscription's statuses within one second: a subscription is created
// incomplete, lives (active, trialing, past_due, paused), and ends.
func stage(status string) int {
	switch status {
	case StatusIncomplete:
		return 0
	case StatusCanceled, StatusUnpaid, StatusIncompleteExpired:
		return 2
	}
	return 1
}
