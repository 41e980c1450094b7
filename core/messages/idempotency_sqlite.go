package messages

import (
	"context"
	"database/sql"
	"time"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

// idempotencySQLite keeps the records in the idempotency table. A claim is
// one write: insert, or read the existing record and take it over when it
// is dead, with nothing in between.
type idempotencySQLite struct{ db *sqlite.DB }

func (s *idempotencySQLite) Claim(ctx context.Context, rec *IdempotencyRecord, dead func(old *IdempotencyRecord) bool) (*IdempotencyRecord, error) {
	var existing *IdempotencyRecord
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		existing = nil
		res, err := tx.ExecContext(ctx, `INSERT INTO idempotency (id, request_hash, done, status, content_type, location, body, created_at)
			VALUES (?, ?, 0, 0, '', '', NULL, ?) ON CONFLICT (id) DO NOTHING`, rec.ID, rec.RequestHash, rec.CreatedAt.UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		old := &IdempotencyRecord{ID: rec.ID}
		var done, created int64
		if err := tx.QueryRowContext(ctx, `SELECT request_hash, done, status, content_type, location, body, created_at
			FROM idempotency WHERE id = ?`, rec.ID).Scan(&old.RequestHash, &done, &old.Status, &old.ContentType, &old.Location, &old.Body, &created); err != nil {
			return err
		}
		old.Done, old.CreatedAt = done != 0, time.UnixMilli(created).UTC()
		if !dead(old) {
			existing = old
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE idempotency SET request_hash = ?, done = 0, status = 0, content_type = '', location = '',
			body = NULL, created_at = ? WHERE id = ?`, rec.RequestHash, rec.CreatedAt.UnixMilli(), rec.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return existing, nil
}

func (s *idempotencySQLite) Complete(ctx context.Context, id string, status int, contentType, location string, body []byte) error {
	return s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE idempotency SET done = 1, status = ?, content_type = ?, location = ?, body = ? WHERE id = ?`,
			status, contentType, location, body, id)
		return err
	})
}

func (s *idempotencySQLite) Release(ctx context.Context, id string) error {
	return s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE id = ? AND done = 0`, id)
		return err
	})
}

func (s *idempotencySQLite) Sweep(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM idempotency WHERE created_at < ?`, cutoff.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
