package store

// Every statement the store runs, for both dialects. Values always travel as parameters ($1, $2,
// ...; SQLite reads $N as the Nth argument too); the only text spliced into SQL is a table name
// read from the database's own catalog, quoted by quoteIdent, in Dump.
//
// Where the dialects differ the field is set in sqliteQueries or postgresQueries below: row locks
// (PostgreSQL's FOR UPDATE; SQLite takes the database's write lock when a transaction begins, as
// OpenSQLite asks with _txlock=immediate) and the catalog.
type queries struct {
	insertAccount, accountByID, accountByEmail, accountByCustomer, listAccounts               string
	updateAccount, updateBilling, deleteAccount, setPassword, passwordHash                    string
	insertAPIKey, apiKeyByHash, touchAPIKey, listAPIKeys, revokeAPIKey                        string
	insertFamily, insertRefresh, lockRefresh, lockFamily, useRefresh                          string
	touchFamily, revokeFamilyByID, listFamilies, revokeFamily, pruneRefresh, pruneFamilies    string
	insertDevice, deviceByUserCode, deviceByHash, lockDevice, pollDevice                      string
	approveDevice, denyDevice, deleteDevice, expireDevices                                    string
	insertSession, sessionByHash, deleteSession, expireSessions                               string
	insertSigningKey, signingKeys, retireSigningKey, deleteSigningKey, markEvent, pruneEvents string
	addUsage, setUsage, usage, tables, columns                                                string
	insertEmailToken, takeEmailToken, expireEmailTokens, deleteSessions                       string
}

const (
	accountCols = `id, email, name, created, plan, status, billing_provider, customer_id,
		subscription_id, billing_updated`
	apiKeyCols = `id, account_id, name, prefix, hash, created, last_used, revoked`
	familyCols = `id, account_id, client, created, last_used, revoked`
	deviceCols = `hash, user_code, client, created, expires, last_poll, interval_ms, account_id,
		denied`
	sessionCols = `hash, account_id, created, expires`
	emailCols   = `hash, purpose, email, name, password_hash, account_id, created, expires`
)

var common = queries{
	insertAccount: `INSERT INTO accounts (id, email, email_key, name, created, plan, status,
		billing_provider, customer_id, subscription_id, billing_updated)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
	accountByID:    `SELECT ` + accountCols + ` FROM accounts WHERE id = $1`,
	accountByEmail: `SELECT ` + accountCols + ` FROM accounts WHERE email_key = $1`,
	accountByCustomer: `SELECT ` + accountCols + ` FROM accounts
		WHERE billing_provider = $1 AND customer_id = $2 AND customer_id <> ''`,
	listAccounts: `SELECT ` + accountCols + ` FROM accounts ORDER BY created, id`,
	updateAccount: `UPDATE accounts SET email = $2, email_key = $3, name = $4, plan = $5,
		status = $6, billing_provider = $7, customer_id = $8, subscription_id = $9,
		billing_updated = $10 WHERE id = $1`,
	// Only an event newer than the last one applied changes the billing state.
	updateBilling: `UPDATE accounts SET plan = $2, status = $3, billing_provider = $4,
		customer_id = $5, subscription_id = $6, billing_updated = $7
		WHERE id = $1 AND (billing_updated IS NULL OR billing_updated < $7)`,
	// Foreign keys with ON DELETE CASCADE remove every row that mentions the account.
	deleteAccount: `DELETE FROM accounts WHERE id = $1`,
	setPassword: `INSERT INTO passwords (account_id, hash) VALUES ($1, $2)
		ON CONFLICT (account_id) DO UPDATE SET hash = excluded.hash`,
	passwordHash: `SELECT hash FROM passwords WHERE account_id = $1`,

	insertAPIKey: `INSERT INTO api_keys (` + apiKeyCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
	apiKeyByHash: `SELECT ` + apiKeyCols + ` FROM api_keys WHERE hash = $1`,
	touchAPIKey:  `UPDATE api_keys SET last_used = $2 WHERE id = $1`,
	listAPIKeys:  `SELECT ` + apiKeyCols + ` FROM api_keys WHERE account_id = $1 ORDER BY created, id`,
	// COALESCE keeps the first revocation time; the row still counts as matched.
	revokeAPIKey: `UPDATE api_keys SET revoked = COALESCE(revoked, $3)
		WHERE account_id = $1 AND id = $2`,

	insertFamily:     `INSERT INTO families (` + familyCols + `) VALUES ($1, $2, $3, $4, $5, $6)`,
	insertRefresh:    `INSERT INTO refresh_tokens (hash, family_id, created) VALUES ($1, $2, $3)`,
	useRefresh:       `UPDATE refresh_tokens SET used = $2 WHERE hash = $1`,
	touchFamily:      `UPDATE families SET last_used = $2 WHERE id = $1`,
	revokeFamilyByID: `UPDATE families SET revoked = COALESCE(revoked, $2) WHERE id = $1`,
	listFamilies:     `SELECT ` + familyCols + ` FROM families WHERE account_id = $1 ORDER BY created, id`,
	revokeFamily: `UPDATE families SET revoked = COALESCE(revoked, $3)
		WHERE account_id = $1 AND id = $2`,

	pruneRefresh:  `DELETE FROM refresh_tokens WHERE used < $1`,
	pruneFamilies: `DELETE FROM families WHERE revoked < $1`,

	insertDevice: `INSERT INTO device_codes (` + deviceCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
	deviceByUserCode: `SELECT ` + deviceCols + ` FROM device_codes WHERE user_code = $1`,
	deviceByHash:     `SELECT ` + deviceCols + ` FROM device_codes WHERE hash = $1`,
	pollDevice:       `UPDATE device_codes SET last_poll = $2, interval_ms = $3 WHERE hash = $1`,
	approveDevice: `UPDATE device_codes SET account_id = $2
		WHERE user_code = $1 AND account_id IS NULL AND NOT denied`,
	denyDevice: `UPDATE device_codes SET denied = TRUE
		WHERE user_code = $1 AND account_id IS NULL`,
	deleteDevice:  `DELETE FROM device_codes WHERE hash = $1`,
	expireDevices: `DELETE FROM device_codes WHERE expires <= $1`,

	insertSession:  `INSERT INTO sessions (` + sessionCols + `) VALUES ($1, $2, $3, $4)`,
	sessionByHash:  `SELECT ` + sessionCols + ` FROM sessions WHERE hash = $1`,
	deleteSession:  `DELETE FROM sessions WHERE hash = $1`,
	expireSessions: `DELETE FROM sessions WHERE expires <= $1`,
	deleteSessions: `DELETE FROM sessions WHERE account_id = $1`,

	insertEmailToken: `INSERT INTO email_tokens (` + emailCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
	// One statement: of two concurrent uses of a link exactly one gets the row.
	takeEmailToken: `DELETE FROM email_tokens WHERE hash = $1 AND purpose = $2 AND expires > $3
		RETURNING ` + emailCols,
	expireEmailTokens: `DELETE FROM email_tokens WHERE expires <= $1`,

	insertSigningKey: `INSERT INTO signing_keys (id, private, created, retired) VALUES ($1, $2, $3, $4)`,
	signingKeys:      `SELECT id, private, created, retired FROM signing_keys ORDER BY created, id`,
	retireSigningKey: `UPDATE signing_keys SET retired = COALESCE(retired, $2) WHERE id = $1`,
	deleteSigningKey: `DELETE FROM signing_keys WHERE id = $1`,

	markEvent: `INSERT INTO webhook_events (provider, event_id, received) VALUES ($1, $2, $3)
		ON CONFLICT (provider, event_id) DO NOTHING`,
	pruneEvents: `DELETE FROM webhook_events WHERE received < $1`,

	addUsage: `INSERT INTO usage_days (account_id, day, requests, tokens) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, day) DO UPDATE SET requests = usage_days.requests + excluded.requests,
		tokens = usage_days.tokens + excluded.tokens`,
	// An import from the routing plane's counters replaces the day's counts, so that importing
	// the same day again (it is still being counted) never adds it twice.
	setUsage: `INSERT INTO usage_days (account_id, day, requests, tokens) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, day) DO UPDATE SET requests = excluded.requests,
		tokens = excluded.tokens`,
	usage: `SELECT account_id, day, requests, tokens FROM usage_days WHERE account_id = $1
		ORDER BY day`,
}

func postgresQueries() queries {
	q := common
	// The token row's lock makes concurrent rotations of one token queue: the second sees the
	// first's committed "used" (READ COMMITTED re-reads a locked row) and is treated as reuse.
	q.lockRefresh = `SELECT family_id, used FROM refresh_tokens WHERE hash = $1 FOR UPDATE`
	q.lockFamily = `SELECT ` + familyCols + ` FROM families WHERE id = $1 FOR UPDATE`
	q.lockDevice = `SELECT ` + deviceCols + ` FROM device_codes WHERE hash = $1 FOR UPDATE`
	q.tables = `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	q.columns = `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`
	return q
}

func sqliteQueries() queries {
	q := common
	// Transactions begin IMMEDIATE (write lock taken at BEGIN), so a plain SELECT inside one
	// already excludes every other writer.
	q.lockRefresh = `SELECT family_id, used FROM refresh_tokens WHERE hash = $1`
	q.lockFamily = `SELECT ` + familyCols + ` FROM families WHERE id = $1`
	q.lockDevice = `SELECT ` + deviceCols + ` FROM device_codes WHERE hash = $1`
	q.tables = `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!'
		ORDER BY name`
	q.columns = `SELECT name FROM pragma_table_info($1) ORDER BY cid`
	return q
}
