package sim

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Count counts the paired sim accounts.
func (s *SQLiteAuth) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM sim_auth`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count sim auth states: %w", err)
	}
	return n, nil
}

// Export hands every sim account's auth state to fn in batches.
func (s *SQLiteAuth) Export(ctx context.Context, batch int, fn func([]*AuthRecord) error) error {
	after := ""
	for {
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT account_id, jid, lid, paired_at FROM sim_auth
			WHERE account_id > ? ORDER BY account_id LIMIT ?`, after, batch)
		if err != nil {
			return fmt.Errorf("export sim auth states: %w", err)
		}
		var out []*AuthRecord
		for rows.Next() {
			var r AuthRecord
			var paired int64
			if err := rows.Scan(&r.AccountID, &r.JID, &r.LID, &paired); err != nil {
				rows.Close()
				return fmt.Errorf("export sim auth states: %w", err)
			}
			r.PairedAt = time.UnixMilli(paired).UTC()
			out = append(out, &r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("export sim auth states: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		if err := fn(out); err != nil {
			return err
		}
		after = out[len(out)-1].AccountID
	}
}

// Import stores the auth states, replacing stored ones.
func (s *SQLiteAuth) Import(ctx context.Context, recs []*AuthRecord) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		for _, r := range recs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO sim_auth (account_id, jid, lid, paired_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (account_id) DO UPDATE SET jid = excluded.jid, lid = excluded.lid, paired_at = excluded.paired_at`,
				r.AccountID, r.JID, r.LID, r.PairedAt.UnixMilli()); err != nil {
				return fmt.Errorf("sim auth state of %q: %w", r.AccountID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import sim auth states: %w", err)
	}
	return nil
}
