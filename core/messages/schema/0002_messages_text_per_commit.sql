-- The full-text index is kept per group commit, not per row. FTS5 writes a
-- new index segment for every statement that changes it, so the per-row
-- insert trigger cost a segment (and the merges after it) per message;
-- the store's before-commit hook (sqlite.go, indexText) now indexes every
-- row above indexed_seq in one statement at each commit, in the same
-- transaction as the rows, so a search never misses a stored message.
DROP TRIGGER messages_text_insert;
DROP TRIGGER messages_text_delete;
DROP TRIGGER messages_text_update;

-- The highest seq whose text is in messages_text. Every row at or below it
-- is indexed; none above it is.
CREATE TABLE messages_text_state (
	id          INTEGER PRIMARY KEY CHECK (id = 0),
	indexed_seq INTEGER NOT NULL
) STRICT;
-- Until now every row was indexed by the trigger.
INSERT INTO messages_text_state VALUES (0, COALESCE((SELECT MAX(seq) FROM messages), 0));

-- Deletes and edits keep the index in step for indexed rows only: telling
-- an external-content FTS5 table to delete a row it never indexed corrupts
-- it. A row above indexed_seq is indexed, as it then is, by the next commit.
CREATE TRIGGER messages_text_delete AFTER DELETE ON messages
	WHEN old.seq <= (SELECT indexed_seq FROM messages_text_state) BEGIN
	INSERT INTO messages_text (messages_text, rowid, text) VALUES ('delete', old.seq, old.text);
END;
CREATE TRIGGER messages_text_update AFTER UPDATE OF text ON messages
	WHEN old.text IS NOT new.text AND old.seq <= (SELECT indexed_seq FROM messages_text_state) BEGIN
	INSERT INTO messages_text (messages_text, rowid, text) VALUES ('delete', old.seq, old.text);
	INSERT INTO messages_text (rowid, text) VALUES (new.seq, new.text);
END;
