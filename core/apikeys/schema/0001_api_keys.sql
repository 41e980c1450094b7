-- API keys: only an HMAC of each secret is kept (the server secret is not in
-- the database). scopes and accounts are JSON arrays, checked in memory;
-- times are unix milliseconds, expires_at and rotated_at NULL when unset.
-- Lookups are by id, the primary key: no other index.
CREATE TABLE api_keys (
	id         TEXT    NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	scopes     TEXT    NOT NULL,
	accounts   TEXT    NOT NULL,
	hash       BLOB    NOT NULL,
	expires_at INTEGER,
	created_at INTEGER NOT NULL,
	rotated_at INTEGER
) STRICT, WITHOUT ROWID;
