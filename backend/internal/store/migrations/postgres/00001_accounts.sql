-- The account plane's first schema. docs/accounts.md lists every column and how long rows live;
-- schema_test.go fails when a column is added without updating that list.

-- +goose Up
CREATE TABLE accounts (
	id               text PRIMARY KEY,
	email            text NOT NULL,
	email_key        text NOT NULL UNIQUE, -- the email case-folded by the store, for uniqueness
	name             text NOT NULL DEFAULT '',
	created          timestamptz NOT NULL,
	plan             text NOT NULL DEFAULT '',
	status           text NOT NULL DEFAULT 'active'
		CHECK (status IN ('active', 'past_due', 'canceled', 'suspended')),
	billing_provider text NOT NULL DEFAULT '',
	customer_id      text NOT NULL DEFAULT '',
	subscription_id  text NOT NULL DEFAULT '',
	billing_updated  timestamptz
);
CREATE UNIQUE INDEX accounts_customer ON accounts (billing_provider, customer_id)
	WHERE customer_id <> '';

CREATE TABLE passwords (
	account_id text PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
	hash       text NOT NULL
);

CREATE TABLE api_keys (
	id         text PRIMARY KEY,
	account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	name       text NOT NULL DEFAULT '',
	prefix     text NOT NULL DEFAULT '',
	hash       bytea NOT NULL UNIQUE,
	created    timestamptz NOT NULL,
	last_used  timestamptz,
	revoked    timestamptz
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE families (
	id         text PRIMARY KEY,
	account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	client     text NOT NULL DEFAULT '',
	created    timestamptz NOT NULL,
	last_used  timestamptz,
	revoked    timestamptz
);
CREATE INDEX families_account ON families (account_id);

-- One row per refresh token ever issued in a family; used is NULL for the current one.
CREATE TABLE refresh_tokens (
	hash      bytea PRIMARY KEY,
	family_id text NOT NULL REFERENCES families (id) ON DELETE CASCADE,
	created   timestamptz NOT NULL,
	used      timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE device_codes (
	hash        bytea PRIMARY KEY,
	user_code   text NOT NULL UNIQUE,
	client      text NOT NULL DEFAULT '',
	created     timestamptz NOT NULL,
	expires     timestamptz NOT NULL,
	last_poll   timestamptz,
	interval_ms bigint NOT NULL DEFAULT 0,
	account_id  text REFERENCES accounts (id) ON DELETE CASCADE,
	denied      boolean NOT NULL DEFAULT false
);
CREATE INDEX device_codes_expires ON device_codes (expires);
CREATE INDEX device_codes_account ON device_codes (account_id);

CREATE TABLE sessions (
	hash       bytea PRIMARY KEY,
	account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	created    timestamptz NOT NULL,
	expires    timestamptz NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);
CREATE INDEX sessions_expires ON sessions (expires);

CREATE TABLE signing_keys (
	id      text PRIMARY KEY,
	private bytea NOT NULL,
	created timestamptz NOT NULL,
	retired timestamptz
);

CREATE TABLE webhook_events (
	provider text NOT NULL,
	event_id text NOT NULL,
	received timestamptz NOT NULL,
	PRIMARY KEY (provider, event_id)
);
CREATE INDEX webhook_events_received ON webhook_events (received);

CREATE TABLE usage_days (
	account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	day        text NOT NULL,
	requests   bigint NOT NULL DEFAULT 0,
	tokens     bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (account_id, day)
);

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
