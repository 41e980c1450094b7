-- The phone's answers to media retry requests (see whatsapp.MediaRetry):
-- the latest one per (account, message). at is unix milliseconds.
CREATE TABLE wa_media_retries (
	account_id TEXT    NOT NULL,
	message_id TEXT    NOT NULL,
	ciphertext BLOB,
	iv         BLOB,
	error_code INTEGER NOT NULL DEFAULT 0,
	at         INTEGER NOT NULL,
	PRIMARY KEY (account_id, message_id)
) STRICT, WITHOUT ROWID;
