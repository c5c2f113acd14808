-- The account plane's first schema, as migrations/postgres has it; here times are Unix
-- microseconds and booleans 0 or 1. docs/accounts.md lists every column and how long rows live;
-- schema_test.go fails when a column is added without updating that list.

-- +goose Up
CREATE TABLE accounts (
	id               text PRIMARY KEY,
	email            text NOT NULL,
	email_key        text NOT NULL UNIQUE, -- the email case-folded by the store, for uniqueness
	name             text NOT NULL DEFAULT '',
	created          integer NOT NULL,
	plan             text NOT NULL DEFAULT '',
	status           text NOT NULL DEFAULT 'active'
		CHECK (status IN ('active', 'past_due', 'canceled', 'suspended')),
	billing_provider text NOT NULL DEFAULT '',
	customer_id      text NOT NULL DEFAULT '',
	subscription_id  text NOT NULL DEFAULT '',
	billing_updated  integer
) STRICT;
CREATE UNIQUE INDEX accounts_customer ON accounts (billing_provider, customer_id)
	WHERE customer_id <> '';

CREATE TABLE passwords (
	account_id text PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
	hash       text NOT NULL
) STRICT;

CREATE TABLE api_keys (
	id         text PRIMARY KEY,
	account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	name       text NOT NULL DEFAULT '',
	prefix     text NOT NULL DEFAULT '',
	hash       blob NOT NULL UNIQUE,
	created    integer NOT NULL,
	last_used  integer,
	revoked    integer
) STRICT;
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE families (
	id         text PRIMARY KEY,
	account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	client     text NOT NULL DEFAULT '',
	created    integer NOT NULL,
	last_used  integer,
	revoked    integer
) STRICT;
CREATE INDEX families_account ON families (account_id);

-- One row per refresh token ever issued in a family; used is NULL for the current one.
CREATE TABLE refresh_tokens (
	hash      blob PRIMARY KEY,
	family_id text NOT NULL REFERENCES families (id) ON DELETE CASCADE,
	created   integer NOT NULL,
	used      integer
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE device_codes (
	hash        blob PRIMARY KEY,
	user_code   text NOT NULL UNIQUE,
	client      text NOT NULL DEFAULT '',
	created     integer NOT NULL,
	expires     integer NOT NULL,
	last_poll   integer,
	interval_ms integer NOT NULL DEFAULT 0,
	account_id  text REFERENCES accounts (id) ON DELETE CASCADE,
	denied      integer NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX device_codes_expires ON device_codes (expires);
CREATE INDEX device_codes_account ON device_codes (account_id);

CREATE TABLE sessions (
	hash       blob PRIMARY KEY,
	account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	created    integer NOT NULL,
	expires    integer NOT NULL
) STRICT;
CREATE INDEX sessions_account ON sessions (account_id);
CREATE INDEX sessions_expires ON sessions (expires);

CREATE TABLE signing_keys (
	id      text PRIMARY KEY,
	private blob NOT NULL,
	created integer NOT NULL,
	retired integer
) STRICT;

CREATE TABLE webhook_events (
	provider text NOT NULL,
	event_id text NOT NULL,
	received integer NOT NULL,
	PRIMARY KEY (provider, event_id)
) STRICT;
CREATE INDEX webhook_events_received ON webhook_events (received);

CREATE TABLE usage_days (
	account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	day        text NOT NULL,
	requests   integer NOT NULL DEFAULT 0,
	tokens     integer NOT NULL DEFAULT 0,
	PRIMARY KEY (account_id, day)
) STRICT;

-- +goose Down
DROP TABLE usage_days;
DROP TABLE webhook_events;
DROP TABLE signing_keys;
DROP TABLE sessions;
DROP TABLE device_codes;
DROP TABLE refresh_tokens;
DROP TABLE families;
DROP TABLE api_keys;
DROP TABLE passwords;
DROP TABLE accounts;
