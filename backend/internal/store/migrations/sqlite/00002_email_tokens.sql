-- Links mailed by the web pages: a sign-up waiting for its email to be confirmed (no account
-- exists until then), and a password reset. Only the SHA-256 of the link's token is kept.
-- docs/accounts.md lists the columns; schema_test.go checks the list.

-- +goose Up
CREATE TABLE email_tokens (
	hash          blob PRIMARY KEY,
	purpose       text NOT NULL CHECK (purpose IN ('signup', 'reset')),
	email         text NOT NULL DEFAULT '',
	name          text NOT NULL DEFAULT '',
	password_hash text NOT NULL DEFAULT '',
	account_id    text REFERENCES accounts (id) ON DELETE CASCADE,
	created       integer NOT NULL,
	expires       integer NOT NULL
) STRICT;
CREATE INDEX email_tokens_expires ON email_tokens (expires);
CREATE INDEX email_tokens_account ON email_tokens (account_id);

-- +goose Down
DROP TABLE email_tokens;
