package store

import (
	"reflect"
	"testing"
)

// allowedColumns is every column the account database may have, for both dialects. The promise
// to users is that this database holds account configuration only: no code, prompts or model
// output, ever. A new column fails this test until it is added here, deliberately, and to
// "What is stored" in docs/accounts.md.
var allowedColumns = map[string][]string{
	// goose's own bookkeeping: which migrations ran, and when.
	"goose_db_version": {"id", "version_id", "is_applied", "tstamp"},
	"accounts": {"id", "email", "email_key", "name", "created", "plan", "status",
		"billing_provider", "customer_id", "subscription_id", "billing_updated"},
	"passwords":      {"account_id", "hash"},
	"api_keys":       {"id", "account_id", "name", "prefix", "hash", "created", "last_used", "revoked"},
	"families":       {"id", "account_id", "client", "created", "last_used", "revoked"},
	"refresh_tokens": {"hash", "family_id", "created", "used"},
	"device_codes": {"hash", "user_code", "client", "created", "expires", "last_poll", "interval_ms",
		"account_id", "denied"},
	"sessions":       {"hash", "account_id", "created", "expires"},
	"signing_keys":   {"id", "private", "created", "retired"},
	"webhook_events": {"provider", "event_id", "received"},
	"usage_days":     {"account_id", "day", "requests", "tokens"},
	"email_tokens": {"hash", "purpose", "email", "name", "password_hash", "account_id", "created",
		"expires"},
}

func testSchema(t *testing.T, s accountStore) {
	ctx := t.Context()
	ok(t, "Migrate", s.Migrate(ctx))
	got, err := s.Columns(ctx)
	ok(t, "Columns", err)
	for table, cols := range got {
		if want, ok := allowedColumns[table]; !ok {
			t.Errorf("table %s is not in allowedColumns (columns %v)", table, cols)
		} else if !reflect.DeepEqual(cols, want) {
			t.Errorf("table %s has columns %v, allowedColumns says %v", table, cols, want)
		}
	}
	for table := range allowedColumns {
		if _, ok := got[table]; !ok {
			t.Errorf("allowedColumns names table %s, which the schema lacks", table)
		}
	}
}
