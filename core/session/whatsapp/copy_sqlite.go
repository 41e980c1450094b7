package whatsapp

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Count counts the stored answers.
func (s *SQLiteMediaRetries) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM wa_media_retries`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count media retry answers: %w", err)
	}
	return n, nil
}

// Export hands every stored answer to fn in batches.
func (s *SQLiteMediaRetries) Export(ctx context.Context, batch int, fn func([]*MediaRetryRecord) error) error {
	var account, message string
	for {
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT account_id, message_id, ciphertext, iv, error_code, at
			FROM wa_media_retries WHERE (account_id, message_id) > (?, ?) ORDER BY account_id, message_id LIMIT ?`,
			account, message, batch)
		if err != nil {
			return fmt.Errorf("export media retry answers: %w", err)
		}
		var out []*MediaRetryRecord
		for rows.Next() {
			var r MediaRetryRecord
			var at int64
			if err := rows.Scan(&r.AccountID, &r.MessageID, &r.Ciphertext, &r.IV, &r.ErrorCode, &at); err != nil {
				rows.Close()
				return fmt.Errorf("export media retry answers: %w", err)
			}
			r.At = time.UnixMilli(at).UTC()
			out = append(out, &r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("export media retry answers: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		if err := fn(out); err != nil {
			return err
		}
		account, message = out[len(out)-1].AccountID, out[len(out)-1].MessageID
	}
}

// Import stores the answers, replacing stored ones.
func (s *SQLiteMediaRetries) Import(ctx context.Context, recs []*MediaRetryRecord) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		for _, r := range recs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO wa_media_retries (account_id, message_id, ciphertext, iv, error_code, at)
				VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (account_id, message_id) DO UPDATE SET
					ciphertext = excluded.ciphertext, iv = excluded.iv, error_code = excluded.error_code, at = excluded.at`,
				r.AccountID, r.MessageID, r.Ciphertext, r.IV, r.ErrorCode, r.At.UnixMilli()); err != nil {
				return fmt.Errorf("media retry answer %s of %s: %w", r.MessageID, r.AccountID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import media retry answers: %w", err)
	}
	return nil
}
