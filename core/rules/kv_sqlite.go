package rules

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// SQLiteSchema is the rules' tables on the embedded engine (rule_kv).
var SQLiteSchema = sqlite.SchemaIn("rules", schemaFS, "schema")

// SQLiteKV keeps rule state in the rule_kv table of the embedded engine,
// one row per (rule, key) with the value as JSON text. Every write is one
// statement, so it needs no lock: SQLite runs it atomically.
type SQLiteKV struct {
	db  *sqlite.DB
	now func() time.Time
}

// NewSQLiteKV returns the store on db (migrated with SQLiteSchema); now nil
// means time.Now.
func NewSQLiteKV(db *sqlite.DB, now func() time.Time) *SQLiteKV {
	if now == nil {
		now = time.Now
	}
	return &SQLiteKV{db: db, now: now}
}

var _ Store = (*SQLiteKV)(nil)

// Get implements KV.
func (k *SQLiteKV) Get(ctx context.Context, rule, key string) (json.RawMessage, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	var v string
	err := k.db.ReadRow(ctx,
		`SELECT value FROM rule_kv WHERE rule = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)`,
		rule, key, k.now().UnixMilli()).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("kv get %q: %w", key, err)
	}
	return json.RawMessage(v), true, nil
}

// Set implements KV.
func (k *SQLiteKV) Set(ctx context.Context, rule, key string, value json.RawMessage, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, value); err != nil {
		return fmt.Errorf("kv set %q: value is not JSON: %w", key, err)
	}
	now := k.now()
	err := k.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := k.db.Exec(ctx, tx, `INSERT INTO rule_kv (rule, key, value, updated_at, expires_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (rule, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
			rule, key, buf.String(), now.UnixMilli(), expiry(now, ttl))
		return err
	})
	if err != nil {
		return fmt.Errorf("kv set %q: %w", key, err)
	}
	return nil
}

// expiry is the expires_at column of a write at now with ttl: NULL (never)
// unless ttl > 0.
func expiry(now time.Time, ttl time.Duration) any {
	if ttl <= 0 {
		return nil
	}
	return now.Add(ttl).UnixMilli()
}

// incrSQL adds ?3 to a counter in one statement: a new key or an expired
// one starts at ?3 (with the new expiry); a live number gets the sum,
// written as an integer when it is one; a live value that is not a number
// is left alone and returns no row.
const incrSQL = `INSERT INTO rule_kv (rule, key, value, updated_at, expires_at)
VALUES (?1, ?2, CAST(?3 AS TEXT), ?4, ?5)
ON CONFLICT (rule, key) DO UPDATE SET
	value = CASE WHEN rule_kv.expires_at <= ?4 THEN excluded.value ELSE (
		SELECT CASE WHEN s = CAST(s AS INTEGER) THEN CAST(CAST(s AS INTEGER) AS TEXT) ELSE CAST(s AS TEXT) END
		FROM (SELECT rule_kv.value + ?3 AS s)) END,
	expires_at = CASE WHEN rule_kv.expires_at <= ?4 THEN excluded.expires_at ELSE rule_kv.expires_at END,
	updated_at = excluded.updated_at
WHERE rule_kv.expires_at <= ?4 OR json_type(rule_kv.value) IN ('integer', 'real')
RETURNING value`

// Incr implements KV: one UPSERT … RETURNING, atomic however many
// handlers count the same key at once.
func (k *SQLiteKV) Incr(ctx context.Context, rule, key string, by float64, ttl time.Duration) (float64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	now := k.now()
	var got string
	err := k.db.Write(ctx, func(tx *sql.Tx) error {
		return k.db.QueryRow(ctx, tx, incrSQL, rule, key, numberValue(by), now.UnixMilli(), expiry(now, ttl)).Scan(&got)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("kv incr %q: value is not a number", key)
	}
	if err != nil {
		return 0, fmt.Errorf("kv incr %q: %w", key, err)
	}
	n, err := strconv.ParseFloat(got, 64)
	if err != nil {
		return 0, fmt.Errorf("kv incr %q: stored %q is not a number", key, got)
	}
	return n, nil
}

// Del implements KV.
func (k *SQLiteKV) Del(ctx context.Context, rule, key string) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	now := k.now().UnixMilli()
	var live bool
	err := k.db.Write(ctx, func(tx *sql.Tx) error {
		var exp sql.NullInt64
		err := k.db.QueryRow(ctx, tx, `DELETE FROM rule_kv WHERE rule = ? AND key = ? RETURNING expires_at`, rule, key).Scan(&exp)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		live = err == nil && (!exp.Valid || exp.Int64 > now)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("kv del %q: %w", key, err)
	}
	return live, nil
}

// sweepBatch bounds one sweep transaction, so a large backlog of expired
// keys does not hold the group commit for long.
const sweepBatch = 1000

// Sweep implements Store.
func (k *SQLiteKV) Sweep(ctx context.Context) (int64, error) {
	now := k.now().UnixMilli()
	var total int64
	for {
		var n int64
		err := k.db.Write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM rule_kv WHERE (rule, key) IN (
				SELECT rule, key FROM rule_kv WHERE expires_at <= ? LIMIT ?)`, now, sweepBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sweep expired rule kv entries: %w", err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}
