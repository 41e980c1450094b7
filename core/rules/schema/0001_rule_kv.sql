-- The rules' key-value store (ctx.kv): one row per key of a rule file's
-- namespace. value is the JSON the rule stored. Times are unix milliseconds.
CREATE TABLE rule_kv (
	rule       TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	value      TEXT    NOT NULL,
	updated_at INTEGER NOT NULL,
	expires_at INTEGER,
	PRIMARY KEY (rule, key)
) STRICT, WITHOUT ROWID;

-- The expiry sweep.
CREATE INDEX rule_kv_expires_at ON rule_kv (expires_at) WHERE expires_at IS NOT NULL;
