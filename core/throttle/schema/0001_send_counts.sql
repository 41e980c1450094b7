-- Sends per account and UTC day (YYYY-MM-DD), for the daily cap and the
-- warm-up caps of send pacing.
CREATE TABLE send_counts (
	account_id TEXT    NOT NULL,
	day        TEXT    NOT NULL,
	count      INTEGER NOT NULL,
	PRIMARY KEY (account_id, day)
) STRICT, WITHOUT ROWID;
