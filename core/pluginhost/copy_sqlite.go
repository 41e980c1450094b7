package pluginhost

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Count counts the stored keys of every plugin.
func (k *SQLiteKV) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := k.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM plugin_kv`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count plugin kv entries: %w", err)
	}
	return n, nil
}

// Export hands every stored key to fn in batches.
func (k *SQLiteKV) Export(ctx context.Context, batch int, fn func([]*KVEntry) error) error {
	var plugin, key string
	for {
		rows, err := k.db.Reader().QueryContext(ctx, `SELECT plugin, key, value, updated_at, expires_at FROM plugin_kv
			WHERE (plugin, key) > (?, ?) ORDER BY plugin, key LIMIT ?`, plugin, key, batch)
		if err != nil {
			return fmt.Errorf("export plugin kv entries: %w", err)
		}
		var out []*KVEntry
		for rows.Next() {
			var e KVEntry
			var updated int64
			var exp sql.NullInt64
			if err := rows.Scan(&e.Plugin, &e.Key, &e.Value, &updated, &exp); err != nil {
				rows.Close()
				return fmt.Errorf("export plugin kv entries: %w", err)
			}
			e.UpdatedAt = time.UnixMilli(updated).UTC()
			if exp.Valid {
				t := time.UnixMilli(exp.Int64).UTC()
				e.ExpiresAt = &t
			}
			if e.Value == nil {
				e.Value = []byte{}
			}
			out = append(out, &e)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("export plugin kv entries: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		if err := fn(out); err != nil {
			return err
		}
		plugin, key = out[len(out)-1].Plugin, out[len(out)-1].Key
	}
}

// Import stores the entries, replacing stored ones.
func (k *SQLiteKV) Import(ctx context.Context, es []*KVEntry) error {
	err := k.db.Write(ctx, func(tx *sql.Tx) error {
		for _, e := range es {
			var exp any
			if e.ExpiresAt != nil {
				exp = e.ExpiresAt.UnixMilli()
			}
			value := e.Value
			if value == nil {
				value = []byte{}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO plugin_kv (plugin, key, value, updated_at, expires_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
				e.Plugin, e.Key, value, e.UpdatedAt.UnixMilli(), exp); err != nil {
				return fmt.Errorf("plugin %s key %q: %w", e.Plugin, e.Key, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import plugin kv entries: %w", err)
	}
	return nil
}
