package billing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

// fakeStore stands in for the account store until it is merged; the store's conformance suite
// will run Apply against the real ones.
type fakeStore struct {
	markEvent         func(ctx context.Context, provider, eventID string, at time.Time) (bool, error)
	accountByCustomer func(ctx context.Context, provider, customerID string) (store.Account, error)
	accountByEmail    func(ctx context.Context, email string) (store.Account, error)
	updateAccount     func(ctx context.Context, a store.Account) error
}

func (f *fakeStore) MarkEvent(ctx context.Context, provider, eventID string, at time.Time) (bool, error) {
	return f.markEvent(ctx, provider, eventID, at)
}
func (f *fakeStore) AccountByCustomer(ctx context.Context, provider, customerID string) (store.Account, error) {
	return f.accountByCustomer(ctx, provider, customerID)
}
func (f *fakeStore) AccountByEmail(ctx context.Context, email string) (store.Account, error) {
	return f.accountByEmail(ctx, email)
}
func (f *fakeStore) UpdateAccount(ctx context.Context, a store.Account) error {
	return f.updateAccount(ctx, a)
}

// memStore is a fakeStore over one account held in memory; *updates counts UpdateAccount calls.
func memStore(a *store.Account, updates *int) *fakeStore {
	seen := map[string]bool{}
	return &fakeStore{
		markEvent: func(_ context.Context, provider, id string, _ time.Time) (bool, error) {
			k := provider + "/" + id
			fresh := !seen[k]
			seen[k] = true
			return fresh, nil
		},
		accountByCustomer: func(_ context.Context, provider, customer string) (store.Account, error) {
			if a.CustomerID != "" && a.BillingProvider == provider && a.CustomerID == customer {
				return *a, nil
			}
			return store.Account{}, fmt.Errorf("account by customer: %w", store.ErrNotFound)
		},
		accountByEmail: func(_ context.Context, email string) (store.Account, error) {
			if strings.EqualFold(a.Email, email) {
				return *a, nil
			}
			return store.Account{}, store.ErrNotFound
		},
		updateAccount: func(_ context.Context, b store.Account) error {
			if b.ID != a.ID {
				return store.ErrNotFound
			}
			*updates++
			*a = b
			return nil
		},
	}
}

var t0 = time.Unix(1796652000, 0)

func TestApply(t *testing.T) {
	unlinked := store.Account{ID: "acct_42", Email: "ada@example.com", Name: "Ada", Created: t0.Add(-time.Hour)}
	linked := unlinked
	linked.Plan, linked.Status, linked.BillingUpdated = "pro", StatusActive, t0
	linked.BillingProvider, linked.CustomerID, linked.SubscriptionID = Stripe, "cus_1", "sub_1"
	with := func(a store.Account, f func(*store.Account)) store.Account { f(&a); return a }
	sub := func(status string, at time.Time, prices ...string) Change {
		return Change{Provider: Stripe, EventID: "evt_" + status, EventTime: at, CustomerID: "cus_1", SubscriptionID: "sub_1", Status: status, Prices: prices}
	}
	checkout := Change{Provider: Stripe, EventID: "evt_co", EventTime: t0.Add(-2 * time.Second), CustomerID: "cus_1", SubscriptionID: "sub_1",
		Email: "ADA@example.com", AccountRef: "acct_42", Prices: []string{"price_1Pro"}, Status: StatusActive}

	tests := []struct {
		name    string
		acct    store.Account
		seen    bool // the event id was marked before
		change  Change
		want    Result
		wantErr error
		after   store.Account // the account afterwards; unchanged when zero
	}{
		{name: "checkout links the account with the email", acct: unlinked, change: checkout,
			want:  Result{Outcome: Applied, AccountID: "acct_42", Linked: true, NewPlan: "pro", NewStatus: StatusActive},
			after: with(linked, func(a *store.Account) { a.BillingUpdated = t0.Add(-2 * time.Second) })},
		{name: "active with a price of another plan", acct: linked, change: sub(StatusActive, t0.Add(time.Second), "price_1Team"),
			want:  Result{Outcome: Applied, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive, NewPlan: "team", NewStatus: StatusActive},
			after: with(linked, func(a *store.Account) { a.Plan, a.BillingUpdated = "team", t0.Add(time.Second) })},
		{name: "past_due without prices keeps the plan", acct: linked, change: sub(StatusPastDue, t0.Add(5*time.Second)),
			want:  Result{Outcome: Applied, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive, NewPlan: "pro", NewStatus: StatusPastDue},
			after: with(linked, func(a *store.Account) { a.Status, a.BillingUpdated = StatusPastDue, t0.Add(5*time.Second) })},
		{name: "canceled: no plan", acct: linked, change: sub(StatusCanceled, t0.Add(time.Minute), "price_1Pro"),
			want:  Result{Outcome: Applied, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive, NewStatus: StatusCanceled},
			after: with(linked, func(a *store.Account) { a.Plan, a.Status, a.BillingUpdated = "", StatusCanceled, t0.Add(time.Minute) })},
		{name: "unpaid: no plan", acct: linked, change: sub(StatusUnpaid, t0.Add(time.Minute)),
			want:  Result{Outcome: Applied, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive, NewStatus: StatusCanceled},
			after: with(linked, func(a *store.Account) { a.Plan, a.Status, a.BillingUpdated = "", StatusCanceled, t0.Add(time.Minute) })},
		{name: "incomplete_expired: no plan", acct: linked, change: sub(StatusIncompleteExpired, t0.Add(time.Minute), "price_1Pro"),
			want: Result{Outcome: Applied, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive, NewStatus: StatusCanceled},
			after: with(linked, func(a *store.Account) {
				a.Plan, a.Status, a.BillingUpdated = "", StatusCanceled, t0.Add(time.Minute)
			})},
		{name: "paused: no plan", acct: linked, change: sub(StatusPaused, t0.Add(time.Minute), "price_1Pro"),
			want:  Result{Outcome: Applied, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive, NewStatus: StatusPastDue},
			after: with(linked, func(a *store.Account) { a.Plan, a.Status, a.BillingUpdated = "", StatusPastDue, t0.Add(time.Minute) })},
		{name: "trialing is an active account", acct: linked, change: sub(StatusTrialing, t0.Add(time.Minute), "price_1Pro"),
			want:  Result{Outcome: Applied, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive, NewPlan: "pro", NewStatus: StatusActive},
			after: with(linked, func(a *store.Account) { a.BillingUpdated = t0.Add(time.Minute) })},
		{name: "a suspended account stays suspended", acct: with(linked, func(a *store.Account) { a.Status = store.StatusSuspended }),
			change: sub(StatusActive, t0.Add(time.Minute), "price_1Team"),
			want:   Result{Outcome: Applied, AccountID: "acct_42", OldPlan: "pro", OldStatus: store.StatusSuspended, NewPlan: "team", NewStatus: store.StatusSuspended},
			after: with(linked, func(a *store.Account) {
				a.Plan, a.Status, a.BillingUpdated = "team", store.StatusSuspended, t0.Add(time.Minute)
			})},
		{name: "resumed gives the mapped plan back",
			acct:   with(linked, func(a *store.Account) { a.Plan, a.Status = "", StatusPastDue }),
			change: sub(StatusActive, t0.Add(time.Minute), "price_1Pro", "prod_x"),
			want:   Result{Outcome: Applied, AccountID: "acct_42", OldStatus: StatusPastDue, NewPlan: "pro", NewStatus: StatusActive},
			after:  with(linked, func(a *store.Account) { a.BillingUpdated = t0.Add(time.Minute) })},
		{name: "active with an unmapped price gives no plan", acct: linked, change: sub(StatusActive, t0.Add(time.Minute), "price_gift"),
			want:  Result{Outcome: Applied, AccountID: "acct_42", Unmapped: true, OldPlan: "pro", OldStatus: StatusActive, NewStatus: StatusActive},
			after: with(linked, func(a *store.Account) { a.Plan, a.BillingUpdated = "", t0.Add(time.Minute) })},
		{name: "an older event is stale", acct: linked, change: sub(StatusCanceled, t0.Add(-time.Second)),
			want: Result{Outcome: Stale, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive}},
		{name: "same second, an earlier stage is stale", acct: linked, change: sub(StatusIncomplete, t0, "price_1Pro"),
			want: Result{Outcome: Stale, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive}},
		{name: "same second, a later stage applies", acct: linked, change: sub(StatusCanceled, t0, "price_1Pro"),
			want:  Result{Outcome: Applied, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive, NewStatus: StatusCanceled},
			after: with(linked, func(a *store.Account) { a.Plan, a.Status = "", StatusCanceled })},
		{name: "an event seen and applied before", acct: linked, seen: true, change: sub(StatusActive, t0, "price_1Pro"),
			want: Result{Outcome: Duplicate, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive}},
		{name: "an event seen before but never written is applied", acct: linked, seen: true, change: sub(StatusCanceled, t0.Add(time.Second)),
			want:  Result{Outcome: Applied, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive, NewStatus: StatusCanceled},
			after: with(linked, func(a *store.Account) { a.Plan, a.Status, a.BillingUpdated = "", StatusCanceled, t0.Add(time.Second) })},
		{name: "unknown customer, no email", acct: unlinked, change: sub(StatusActive, t0, "price_1Pro"),
			want: Result{Outcome: Unmatched, Reason: "unknown customer, and the event has no email"}},
		{name: "unknown customer named by a checkout reference is retried", acct: unlinked,
			change:  with2(sub(StatusActive, t0, "price_1Pro"), func(c *Change) { c.AccountRef = "acct_42" }),
			want:    Result{Outcome: Unmatched, Reason: "unknown customer, and the event has no email"},
			wantErr: ErrNotLinked},
		{name: "no account has the email", acct: unlinked, change: with2(checkout, func(c *Change) { c.Email, c.AccountRef = "eve@example.com", "" }),
			want: Result{Outcome: Unmatched, Reason: "unknown customer, and no account has its email"}},
		{name: "an email of no account is not retried, even with a checkout reference", acct: unlinked,
			change: with2(checkout, func(c *Change) { c.Email = "eve@example.com" }),
			want:   Result{Outcome: Unmatched, Reason: "unknown customer, and no account has its email"}},
		{name: "checkout reference names another account", acct: unlinked, change: with2(checkout, func(c *Change) { c.AccountRef = "acct_99" }),
			want: Result{Outcome: Unmatched, Reason: "the checkout was started for another account than the email's"}},
		{name: "the email's account is paid through another customer",
			acct:   with(linked, func(a *store.Account) { a.CustomerID = "cus_other" }),
			change: with2(checkout, func(c *Change) { c.EventTime = t0.Add(time.Hour); c.AccountRef = "" }),
			want:   Result{Outcome: Unmatched, Reason: "the email's account is paid through another customer"}},
		{name: "the email's account had another customer that gives nothing: relinked",
			acct: with(linked, func(a *store.Account) {
				a.CustomerID, a.SubscriptionID, a.Plan, a.Status = "cus_old", "sub_old", "", StatusCanceled
			}),
			change: with2(checkout, func(c *Change) { c.EventTime = t0.Add(time.Hour) }),
			want:   Result{Outcome: Applied, AccountID: "acct_42", Linked: true, OldStatus: StatusCanceled, NewPlan: "pro", NewStatus: StatusActive},
			after:  with(linked, func(a *store.Account) { a.BillingUpdated = t0.Add(time.Hour) })},
		{name: "another subscription ending leaves the paying one alone", acct: linked,
			change: with2(sub(StatusCanceled, t0.Add(time.Hour), "price_1Pro"), func(c *Change) { c.SubscriptionID = "sub_2" }),
			want:   Result{Outcome: OtherSubscription, AccountID: "acct_42", Reason: "the account is paid through another subscription", OldPlan: "pro", OldStatus: StatusActive}},
		{name: "another subscription that gives a plan takes over", acct: linked,
			change: with2(sub(StatusActive, t0.Add(time.Hour), "price_1Team"), func(c *Change) { c.SubscriptionID = "sub_2" }),
			want:   Result{Outcome: Applied, AccountID: "acct_42", OldPlan: "pro", OldStatus: StatusActive, NewPlan: "team", NewStatus: StatusActive},
			after: with(linked, func(a *store.Account) {
				a.Plan, a.SubscriptionID, a.BillingUpdated = "team", "sub_2", t0.Add(time.Hour)
			})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acct := tt.acct
			updates := 0
			st := memStore(&acct, &updates)
			if tt.seen {
				st.markEvent(t.Context(), tt.change.Provider, tt.change.EventID, tt.change.EventTime)
			}
			got, err := Apply(t.Context(), st, tt.change, testPlans)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("error: got %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("result:\n got %+v\nwant %+v", got, tt.want)
			}
			want := tt.after
			if want == (store.Account{}) {
				want = tt.acct
			}
			if acct != want {
				t.Errorf("account:\n got %+v\nwant %+v", acct, want)
			}
			if wantUpdates := map[bool]int{true: 1}[got.Outcome == Applied]; updates != wantUpdates {
				t.Errorf("UpdateAccount called %d times, want %d", updates, wantUpdates)
			}
			if got.PlanChanged() != (got.Outcome == Applied && tt.want.OldPlan != tt.want.NewPlan) {
				t.Errorf("PlanChanged: got %v", got.PlanChanged())
			}
		})
	}
}

func with2(c Change, f func(*Change)) Change { f(&c); return c }

func TestApplyStoreErrors(t *testing.T) {
	boom := errors.New("database is down")
	acct := store.Account{ID: "acct_42", Email: "ada@example.com"}
	c := Change{Provider: Stripe, EventID: "evt_1", EventTime: t0, CustomerID: "cus_1", Email: "ada@example.com", Status: StatusActive}
	tests := []struct {
		name   string
		break_ func(*fakeStore)
	}{
		{"MarkEvent", func(f *fakeStore) {
			f.markEvent = func(context.Context, string, string, time.Time) (bool, error) { return false, boom }
		}},
		{"AccountByCustomer", func(f *fakeStore) {
			f.accountByCustomer = func(context.Context, string, string) (store.Account, error) { return store.Account{}, boom }
		}},
		{"AccountByEmail", func(f *fakeStore) {
			f.accountByEmail = func(context.Context, string) (store.Account, error) { return store.Account{}, boom }
		}},
		{"UpdateAccount", func(f *fakeStore) {
			f.updateAccount = func(context.Context, store.Account) error { return boom }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, n := acct, 0
			st := memStore(&a, &n)
			tt.break_(st)
			if _, err := Apply(t.Context(), st, c, testPlans); !errors.Is(err, boom) {
				t.Errorf("got %v, want the store's error", err)
			}
		})
	}
	if _, err := Apply(t.Context(), memStore(&acct, new(int)), Change{Provider: Stripe}, testPlans); err == nil {
		t.Error("an incomplete change was accepted")
	}
}

// TestApplyAnyOrder delivers the providers' events in every order, each twice, and an event
// that arrives before its customer is linked again after the others (as a provider retries
// after a 5xx): the account always ends in the state of the latest event.
func TestApplyAnyOrder(t *testing.T) {
	w := testWebhooks()
	var stripeEvents, polarEvents []Change
	for _, f := range []string{"stripe_checkout_session_completed.json", "stripe_subscription_updated.json", "stripe_invoice_payment_failed.json", "stripe_subscription_deleted.json"} {
		body := readTestdata(t, f)
		c, _, err := w.Stripe(stripeDelivery(body), bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		stripeEvents = append(stripeEvents, c)
	}
	for i, f := range []string{"polar_subscription_active.json", "polar_subscription_revoked.json"} {
		body := readTestdata(t, f)
		c, _, err := w.Polar(polarDelivery(t, fmt.Sprintf("msg_%d", i), body), bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		polarEvents = append(polarEvents, c)
	}
	start := store.Account{ID: "acct_42", Email: "ada@example.com", Created: t0.Add(-time.Hour)}
	tests := []struct {
		name   string
		events []Change
		want   store.Account
	}{
		{"stripe", stripeEvents, store.Account{ID: "acct_42", Email: "ada@example.com", Created: t0.Add(-time.Hour),
			Status: StatusCanceled, BillingProvider: Stripe, CustomerID: stripeCustomer, SubscriptionID: stripeSub, BillingUpdated: time.Unix(1796652600, 0)}},
		{"polar", polarEvents, store.Account{ID: "acct_42", Email: "ada@example.com", Created: t0.Add(-time.Hour),
			Status: StatusCanceled, BillingProvider: Polar, CustomerID: polarCustomer, SubscriptionID: polarSub, BillingUpdated: utc("2026-12-07T14:10:00.105Z")}},
	}
	for _, tt := range tests {
		for _, order := range permutations(len(tt.events)) {
			t.Run(fmt.Sprint(tt.name, order), func(t *testing.T) {
				acct, updates := start, 0
				st := memStore(&acct, &updates)
				var queue []Change
				for _, i := range order {
					queue = append(queue, tt.events[i], tt.events[i])
				}
				for n := 0; len(queue) > 0; n++ {
					if n > 10*len(tt.events) {
						t.Fatalf("events never applied: %v", queue)
					}
					c := queue[0]
					queue = queue[1:]
					if _, err := Apply(t.Context(), st, c, testPlans); errors.Is(err, ErrNotLinked) {
						queue = append(queue, c)
					} else if err != nil {
						t.Fatal(err)
					}
				}
				if !reflect.DeepEqual(acct, tt.want) {
					t.Errorf("account:\n got %+v\nwant %+v", acct, tt.want)
				}
			})
		}
	}
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}
