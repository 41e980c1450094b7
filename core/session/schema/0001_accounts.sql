-- The accounts: one row per account, the truth every part of the daemon
-- reads. Optional text fields are '' when unset; times are unix
-- milliseconds (UTC). Lists are by id, the primary key: no other index.
CREATE TABLE accounts (
	id            TEXT    NOT NULL PRIMARY KEY,
	driver        TEXT    NOT NULL,
	name          TEXT    NOT NULL,
	state         TEXT    NOT NULL,
	reason        TEXT    NOT NULL DEFAULT '',
	jid           TEXT    NOT NULL DEFAULT '',
	push_name     TEXT    NOT NULL DEFAULT '',
	last_error    TEXT    NOT NULL DEFAULT '',
	since         INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	-- The current pairing QR code (NULL when none) and when it expires.
	qr_code       TEXT,
	qr_expires_at INTEGER,
	pairing_code  TEXT    NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;
