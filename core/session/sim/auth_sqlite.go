package sim

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

// SQLiteSchema is the simulator's table on the embedded engine (sim_auth).
var SQLiteSchema = sqlite.SchemaIn("sim", schemaFS, "schema")

// SQLiteAuth keeps the sim accounts' auth state in the sim_auth table.
type SQLiteAuth struct {
	db *sqlite.DB
}

// NewSQLiteAuth returns the store on db (migrated with SQLiteSchema).
func NewSQLiteAuth(db *sqlite.DB) *SQLiteAuth { return &SQLiteAuth{db: db} }

var _ AuthStore = (*SQLiteAuth)(nil)

// Load implements AuthStore.
func (s *SQLiteAuth) Load(ctx context.Context, accountID string) (*Auth, error) {
	var a Auth
	var paired int64
	err := s.db.Reader().QueryRowContext(ctx, `SELECT jid, lid, paired_at FROM sim_auth WHERE account_id = ?`, accountID).
		Scan(&a.JID, &a.LID, &paired)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sim auth state of %q: %w", accountID, err)
	}
	a.PairedAt = time.UnixMilli(paired).UTC()
	return &a, nil
}

// Save implements AuthStore.
func (s *SQLiteAuth) Save(ctx context.Context, accountID string, a Auth) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sim_auth (account_id, jid, lid, paired_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (account_id) DO UPDATE SET jid = excluded.jid, lid = excluded.lid, paired_at = excluded.paired_at`,
			accountID, a.JID, a.LID, a.PairedAt.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("store sim auth state of %q: %w", accountID, err)
	}
	return nil
}

// Delete implements AuthStore.
func (s *SQLiteAuth) Delete(ctx context.Context, accountID string) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sim_auth WHERE account_id = ?`, accountID)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete sim auth state of %q: %w", accountID, err)
	}
	return nil
}
