package whatsapp

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

// SQLiteSchema is the driver's own table on the embedded engine
// (wa_media_retries); whatsmeow's auth state has its own schema.
var SQLiteSchema = sqlite.SchemaIn("whatsapp_media_retries", schemaFS, "schema")

// SQLiteMediaRetries keeps the answers in the wa_media_retries table.
type SQLiteMediaRetries struct {
	db *sqlite.DB
}

// NewSQLiteMediaRetries returns the store on db (migrated with
// SQLiteSchema).
func NewSQLiteMediaRetries(db *sqlite.DB) *SQLiteMediaRetries { return &SQLiteMediaRetries{db: db} }

var _ MediaRetryStore = (*SQLiteMediaRetries)(nil)

// Put implements MediaRetryStore.
func (s *SQLiteMediaRetries) Put(ctx context.Context, accountID, messageID string, r MediaRetry) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO wa_media_retries (account_id, message_id, ciphertext, iv, error_code, at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (account_id, message_id) DO UPDATE SET
				ciphertext = excluded.ciphertext, iv = excluded.iv, error_code = excluded.error_code, at = excluded.at`,
			accountID, messageID, r.Ciphertext, r.IV, r.ErrorCode, r.At.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("store media retry answer for %s: %w", messageID, err)
	}
	return nil
}

// Get implements MediaRetryStore.
func (s *SQLiteMediaRetries) Get(ctx context.Context, accountID, messageID string) (*MediaRetry, error) {
	var r MediaRetry
	var at int64
	err := s.db.Reader().QueryRowContext(ctx,
		`SELECT ciphertext, iv, error_code, at FROM wa_media_retries WHERE account_id = ? AND message_id = ?`,
		accountID, messageID).Scan(&r.Ciphertext, &r.IV, &r.ErrorCode, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read media retry answer for %s: %w", messageID, err)
	}
	r.At = time.UnixMilli(at).UTC()
	return &r, nil
}
