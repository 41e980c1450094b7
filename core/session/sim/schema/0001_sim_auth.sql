-- The simulator's auth state: one row per paired sim account (its fake
-- JID and LID, and when it paired). Times are unix milliseconds.
CREATE TABLE sim_auth (
	account_id TEXT    NOT NULL PRIMARY KEY,
	jid        TEXT    NOT NULL,
	lid        TEXT    NOT NULL,
	paired_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
