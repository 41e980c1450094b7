-- The plugins' key-value store (sdk.Host KVGet/KVSet/KVDelete): one row per
-- key of a plugin's namespace. Times are unix milliseconds.
CREATE TABLE plugin_kv (
	plugin     TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	value      BLOB    NOT NULL,
	updated_at INTEGER NOT NULL,
	expires_at INTEGER,
	PRIMARY KEY (plugin, key)
) STRICT, WITHOUT ROWID;

-- The expiry sweep.
CREATE INDEX plugin_kv_expires_at ON plugin_kv (expires_at) WHERE expires_at IS NOT NULL;
