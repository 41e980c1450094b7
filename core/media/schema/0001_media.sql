-- Media stored on the embedded engine. The bytes are files under
-- data_dir/media/, named by their SHA-256 (media/ab/ab12…); a row here is
-- written only once its file is complete and durable, so a row always
-- names a servable file. A file without a row is an interrupted write:
-- never served, reused by the next upload of the same bytes, swept at start.
CREATE TABLE media (
	id       TEXT    NOT NULL PRIMARY KEY, -- hex SHA-256 of the bytes: the mediaId and the file's name
	size     INTEGER NOT NULL,
	mimetype TEXT    NOT NULL,
	filename TEXT    NOT NULL DEFAULT '',
	created  INTEGER NOT NULL              -- unix milliseconds, UTC: the first upload
) STRICT, WITHOUT ROWID;
