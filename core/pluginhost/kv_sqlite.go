package pluginhost

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// SQLiteSchema is the plugin host's tables on the embedded engine
// (plugin_kv).
var SQLiteSchema = sqlite.SchemaIn("plugin_kv", schemaFS, "schema")

// SQLiteKV keeps the plugins' keys in the plugin_kv table of the embedded
// engine, one row per (plugin, key).
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

var _ KV = (*SQLiteKV)(nil)

// Get implements KV.
func (k *SQLiteKV) Get(ctx context.Context, plugin, key string) ([]byte, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	var v []byte
	err := k.db.Reader().QueryRowContext(ctx,
		`SELECT value FROM plugin_kv WHERE plugin = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)`,
		plugin, key, k.now().UnixMilli()).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("kv get %q: %w", key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, true, nil
}

// Set implements KV.
func (k *SQLiteKV) Set(ctx context.Context, plugin, key string, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if value == nil {
		value = []byte{} // NOT NULL: an empty value is a value
	}
	now := k.now()
	var exp any
	if ttl > 0 {
		exp = now.Add(ttl).UnixMilli()
	}
	err := k.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO plugin_kv (plugin, key, value, updated_at, expires_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
			plugin, key, value, now.UnixMilli(), exp)
		return err
	})
	if err != nil {
		return fmt.Errorf("kv set %q: %w", key, err)
	}
	return nil
}

// Delete implements KV.
func (k *SQLiteKV) Delete(ctx context.Context, plugin, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := k.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM plugin_kv WHERE plugin = ? AND key = ?`, plugin, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("kv delete %q: %w", key, err)
	}
	return nil
}

// sweepBatch bounds one sweep transaction, so a large backlog of expired
// keys does not hold the group commit for long.
const sweepBatch = 1000

// Sweep implements KV.
func (k *SQLiteKV) Sweep(ctx context.Context) (int64, error) {
	now := k.now().UnixMilli()
	var total int64
	for {
		var n int64
		err := k.db.Write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM plugin_kv WHERE (plugin, key) IN (
				SELECT plugin, key FROM plugin_kv WHERE expires_at <= ? LIMIT ?)`, now, sweepBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sweep expired plugin kv entries: %w", err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}
