-- Messages, the chats derived from them, and idempotency records.
--
-- A message row has a real column for every filter and sort the API and
-- the daemon use; doc holds the rest of the document as JSON (MongoDB
-- relaxed Extended JSON of the same document the MongoDB engine stores, so
-- json_extract(doc, '$.media.mimetype') works in the sqlite3 shell). The
-- columns status, status_rank, status_at, error, pipeline_done and raw are
-- authoritative: doc leaves them out, so a receipt or the pipeline mark is
-- one UPDATE of a column.
CREATE TABLE messages (
	-- seq is the stored order: assigned at insert, inside the writer's
	-- transaction, so a reader that saw seq N never later sees a new row
	-- below N (the event stream's resume and pipeline recovery rely on it).
	-- AUTOINCREMENT: numbers of deleted rows are never reused.
	seq           INTEGER PRIMARY KEY AUTOINCREMENT,
	id            TEXT    NOT NULL UNIQUE, -- {accountId}:{messageId}
	account_id    TEXT    NOT NULL,
	message_id    TEXT    NOT NULL,
	chat_id       TEXT    NOT NULL,
	sort_key      TEXT    NOT NULL,        -- history order: see messages.SortKey
	kind          TEXT    NOT NULL,
	type          TEXT    NOT NULL,
	from_jid      TEXT    NOT NULL,
	from_pn       TEXT    NOT NULL,
	from_lid      TEXT    NOT NULL,
	from_me       INTEGER NOT NULL,
	timestamp     INTEGER NOT NULL,        -- WhatsApp's, Unix seconds
	text          TEXT    NOT NULL,        -- text or caption; indexed by messages_text
	has_media     INTEGER NOT NULL,
	media_id      TEXT    NOT NULL,
	stored_at     INTEGER NOT NULL,        -- Unix milliseconds
	status        TEXT    NOT NULL,
	status_rank   INTEGER NOT NULL,
	status_at     INTEGER,                 -- Unix milliseconds
	error         TEXT    NOT NULL,
	-- NULL: no pipeline event (a pending send's placeholder), counts as done.
	pipeline_done INTEGER,
	pipeline_at   INTEGER,
	raw           BLOB,                    -- WhatsApp's message proto
	doc           TEXT    NOT NULL
) STRICT;

-- History of one chat and of one account, newest first: a page is one range
-- on sort_key.
CREATE INDEX messages_account_chat_order ON messages (account_id, chat_id, sort_key);
CREATE INDEX messages_account_order ON messages (account_id, sort_key);
-- Pipeline recovery: an account's unfinished events in stored order.
CREATE INDEX messages_unprocessed ON messages (account_id, seq) WHERE pipeline_done = 0;
-- Sends a dead daemon left pending.
CREATE INDEX messages_pending ON messages (stored_at) WHERE status = 'pending';
-- Media links: the retention job and media expiry.
CREATE INDEX messages_media ON messages (media_id) WHERE media_id <> '';

-- q: case-insensitive substring search on text. An external-content FTS5
-- table (the text lives once, in messages) kept in step by triggers; the
-- trigram tokenizer matches any substring of three characters or more.
CREATE VIRTUAL TABLE messages_text USING fts5(text, content='messages', content_rowid='seq', tokenize='trigram');
CREATE TRIGGER messages_text_insert AFTER INSERT ON messages BEGIN
	INSERT INTO messages_text (rowid, text) VALUES (new.seq, new.text);
END;
CREATE TRIGGER messages_text_delete AFTER DELETE ON messages BEGIN
	INSERT INTO messages_text (messages_text, rowid, text) VALUES ('delete', old.seq, old.text);
END;
CREATE TRIGGER messages_text_update AFTER UPDATE OF text ON messages WHEN old.text IS NOT new.text BEGIN
	INSERT INTO messages_text (messages_text, rowid, text) VALUES ('delete', old.seq, old.text);
	INSERT INTO messages_text (rowid, text) VALUES (new.seq, new.text);
END;

-- One row per (account, chat), folded in by the same write that stores a
-- message.
CREATE TABLE chats (
	account_id    TEXT    NOT NULL,
	chat_id       TEXT    NOT NULL,
	chat_pn       TEXT    NOT NULL,
	chat_lid      TEXT    NOT NULL,
	name          TEXT    NOT NULL,
	is_group      INTEGER NOT NULL,
	last_message  TEXT,                    -- JSON of messages.ChatMessage
	last_activity INTEGER NOT NULL,        -- Unix seconds
	unread_count  INTEGER NOT NULL,
	message_count INTEGER NOT NULL,
	activity_key  TEXT    NOT NULL,        -- last message's sort key | chat id
	updated_at    INTEGER NOT NULL,        -- Unix milliseconds
	PRIMARY KEY (account_id, chat_id)
) STRICT, WITHOUT ROWID;

-- Chats of one account by last activity.
CREATE INDEX chats_account_activity ON chats (account_id, activity_key);

CREATE TABLE idempotency (
	id           TEXT    PRIMARY KEY,      -- {accountId}:{key}
	request_hash TEXT    NOT NULL,
	done         INTEGER NOT NULL,
	status       INTEGER NOT NULL,
	content_type TEXT    NOT NULL,
	location     TEXT    NOT NULL,
	body         BLOB,
	created_at   INTEGER NOT NULL          -- Unix milliseconds
) STRICT;

-- The expiry sweep.
CREATE INDEX idempotency_created_at ON idempotency (created_at);
