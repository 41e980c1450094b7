package session

import (
	"context"
	"database/sql"
	"fmt"
)

// The engine-to-engine copy (wildcatd store copy) on SQLite: every account
// exactly as stored.

// Count counts the accounts.
func (s *SQLiteAccounts) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count accounts: %w", err)
	}
	return n, nil
}

// Export hands every account to fn in batches, by id.
func (s *SQLiteAccounts) Export(ctx context.Context, batch int, fn func([]*AccountInfo) error) error {
	after := ""
	for {
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id > ? ORDER BY id LIMIT ?`, after, batch)
		if err != nil {
			return fmt.Errorf("export accounts: %w", err)
		}
		var out []*AccountInfo
		for rows.Next() {
			a, err := scanAccount(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("export accounts: %w", err)
			}
			out = append(out, a)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("export accounts: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		if err := fn(out); err != nil {
			return err
		}
		after = out[len(out)-1].ID
	}
}

// Import stores the accounts with their ids, replacing stored ones.
func (s *SQLiteAccounts) Import(ctx context.Context, as []*AccountInfo) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		for _, a := range as {
			var qrCode, qrExp any
			if a.QR != nil {
				qrCode, qrExp = a.QR.Code, a.QR.ExpiresAt.UnixMilli()
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO accounts (`+accountColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET driver = excluded.driver, name = excluded.name, state = excluded.state,
				reason = excluded.reason, jid = excluded.jid, push_name = excluded.push_name, last_error = excluded.last_error,
				since = excluded.since, created_at = excluded.created_at, updated_at = excluded.updated_at,
				qr_code = excluded.qr_code, qr_expires_at = excluded.qr_expires_at, pairing_code = excluded.pairing_code,
				proxy = excluded.proxy`,
				a.ID, a.Driver, a.Name, string(a.State), a.Reason, a.JID, a.PushName, a.LastError,
				a.Since.UnixMilli(), a.CreatedAt.UnixMilli(), a.UpdatedAt.UnixMilli(), qrCode, qrExp, a.PairingCode, a.Proxy)
			if err != nil {
				return fmt.Errorf("account %q: %w", a.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import accounts: %w", err)
	}
	return nil
}
