-- The webhook endpoints, secrets and health included. events, accounts and
-- headers are JSON (the fan-out matches them in memory, never in SQL);
-- optional text is '' when unset, optional times NULL; times are unix
-- milliseconds. Lists are by id, the primary key: no other index.
CREATE TABLE webhook_endpoints (
	id                    TEXT    NOT NULL PRIMARY KEY,
	url                   TEXT    NOT NULL,
	events                TEXT    NOT NULL,
	accounts              TEXT    NOT NULL,
	description           TEXT    NOT NULL,
	headers               TEXT    NOT NULL,
	enabled               INTEGER NOT NULL,
	rate_limit            REAL    NOT NULL,
	source                TEXT    NOT NULL,
	secret                TEXT    NOT NULL,
	previous_secret       TEXT    NOT NULL DEFAULT '',
	previous_secret_until INTEGER,
	failing_since         INTEGER,
	disabled_reason       TEXT    NOT NULL DEFAULT '',
	disabled_at           INTEGER,
	created_at            INTEGER NOT NULL,
	updated_at            INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
