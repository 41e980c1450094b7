package rules

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Count counts the stored keys of every rule.
func (k *SQLiteKV) Count(ctx context.Context) (int64, error) {
	if err := k.db.Barrier(ctx); err != nil { // writes still queued count
		return 0, fmt.Errorf("count rule kv entries: %w", err)
	}
	var n int64
	if err := k.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM rule_kv`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rule kv entries: %w", err)
	}
	return n, nil
}

// Export hands every stored key to fn in batches.
func (k *SQLiteKV) Export(ctx context.Context, batch int, fn func([]*KVEntry) error) error {
	if err := k.db.Barrier(ctx); err != nil { // writes still queued are exported
		return fmt.Errorf("export rule kv entries: %w", err)
	}
	var rule, key string
	for {
		rows, err := k.db.Reader().QueryContext(ctx, `SELECT rule, key, value, updated_at, expires_at FROM rule_kv
			WHERE (rule, key) > (?, ?) ORDER BY rule, key LIMIT ?`, rule, key, batch)
		if err != nil {
			return fmt.Errorf("export rule kv entries: %w", err)
		}
		var out []*KVEntry
		for rows.Next() {
			var e KVEntry
			var value string
			var updated int64
			var exp sql.NullInt64
			if err := rows.Scan(&e.Rule, &e.Key, &value, &updated, &exp); err != nil {
				rows.Close()
				return fmt.Errorf("export rule kv entries: %w", err)
			}
			e.Value, e.UpdatedAt = json.RawMessage(value), time.UnixMilli(updated).UTC()
			if exp.Valid {
				t := time.UnixMilli(exp.Int64).UTC()
				e.ExpiresAt = &t
			}
			out = append(out, &e)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("export rule kv entries: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		if err := fn(out); err != nil {
			return err
		}
		rule, key = out[len(out)-1].Rule, out[len(out)-1].Key
	}
}

// Import stores the entries, replacing stored ones.
func (k *SQLiteKV) Import(ctx context.Context, es []*KVEntry) error {
	err := k.db.Write(ctx, func(tx *sql.Tx) error {
		for _, e := range es {
			var buf bytes.Buffer
			if err := json.Compact(&buf, e.Value); err != nil {
				return fmt.Errorf("rule %s key %q: value is not JSON: %w", e.Rule, e.Key, err)
			}
			var exp any
			if e.ExpiresAt != nil {
				exp = e.ExpiresAt.UnixMilli()
			}
			if _, err := tx.ExecContext(ctx, upsertSQL, e.Rule, e.Key, buf.String(), e.UpdatedAt.UnixMilli(), exp); err != nil {
				return fmt.Errorf("rule %s key %q: %w", e.Rule, e.Key, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import rule kv entries: %w", err)
	}
	// Kept rows now read what was imported.
	for _, e := range es {
		kk := kvKey{e.Rule, e.Key}
		sh := k.cache.shard(kk)
		sh.mu.Lock()
		if r, ok := sh.rows[kk]; ok {
			var buf bytes.Buffer
			_ = json.Compact(&buf, e.Value) // checked above
			st := kvState{value: buf.String()}
			if e.ExpiresAt != nil {
				st.expires = e.ExpiresAt.UnixMilli()
			}
			r.kvState = st
		}
		sh.mu.Unlock()
	}
	return nil
}
