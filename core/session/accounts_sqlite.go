package session

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// SQLiteSchema is the accounts table on the embedded engine.
var SQLiteSchema = sqlite.SchemaIn("accounts", schemaFS, "schema")

// SQLiteAccounts keeps the accounts in the accounts table of the embedded
// engine. Each change is one UPDATE, atomic without any lock of ours.
type SQLiteAccounts struct {
	db *sqlite.DB
}

// NewSQLiteAccounts returns the store on db (migrated with SQLiteSchema).
func NewSQLiteAccounts(db *sqlite.DB) *SQLiteAccounts { return &SQLiteAccounts{db: db} }

var _ AccountStore = (*SQLiteAccounts)(nil)

const accountColumns = `id, driver, name, state, reason, jid, push_name, last_error, since, created_at, updated_at,
	qr_code, qr_expires_at, pairing_code, proxy`

// Insert implements AccountStore.
func (s *SQLiteAccounts) Insert(ctx context.Context, a *AccountInfo) error {
	var qrCode, qrExp any
	if a.QR != nil {
		qrCode, qrExp = a.QR.Code, a.QR.ExpiresAt.UnixMilli()
	}
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO accounts (`+accountColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Driver, a.Name, string(a.State), a.Reason, a.JID, a.PushName, a.LastError,
			a.Since.UnixMilli(), a.CreatedAt.UnixMilli(), a.UpdatedAt.UnixMilli(), qrCode, qrExp, a.PairingCode, a.Proxy)
		return err
	})
	if sqlite.IsConstraint(err) {
		return fmt.Errorf("account %q: %w", a.ID, ErrAccountExists)
	}
	if err != nil {
		return fmt.Errorf("create account %q: %w", a.ID, err)
	}
	return nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanAccount(r rowScanner) (*AccountInfo, error) {
	var (
		a                       AccountInfo
		state                   string
		since, created, updated int64
		qrCode                  sql.NullString
		qrExp                   sql.NullInt64
	)
	if err := r.Scan(&a.ID, &a.Driver, &a.Name, &state, &a.Reason, &a.JID, &a.PushName, &a.LastError,
		&since, &created, &updated, &qrCode, &qrExp, &a.PairingCode, &a.Proxy); err != nil {
		return nil, err
	}
	a.State = State(state)
	a.Since, a.CreatedAt, a.UpdatedAt = fromMillis(since), fromMillis(created), fromMillis(updated)
	if qrCode.Valid {
		a.QR = &QR{Code: qrCode.String, ExpiresAt: fromMillis(qrExp.Int64)}
	}
	return &a, nil
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Get implements AccountStore.
func (s *SQLiteAccounts) Get(ctx context.Context, id string) (*AccountInfo, error) {
	a, err := scanAccount(s.db.Reader().QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("account %q: %w", id, ErrAccountNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read account %q: %w", id, err)
	}
	return a, nil
}

// List implements AccountStore.
func (s *SQLiteAccounts) List(ctx context.Context) ([]*AccountInfo, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	out := []*AccountInfo{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// Delete implements AccountStore.
func (s *SQLiteAccounts) Delete(ctx context.Context, id string) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete account %q: %w", id, err)
	}
	return nil
}

// Apply implements AccountStore as one UPDATE. Its expressions read the
// row as it was, so since and reason change only when state does.
func (s *SQLiteAccounts) Apply(ctx context.Context, id string, c AccountChange) error {
	sets := []string{"updated_at = ?"}
	args := []any{time.Now().UnixMilli()}
	if c.State != "" {
		sets = append(sets,
			"since = CASE WHEN state <> ? THEN ? ELSE since END",
			"reason = CASE WHEN state <> ? THEN ? ELSE reason END",
			"state = ?")
		args = append(args, string(c.State), c.At.UnixMilli(), string(c.State), c.Reason, string(c.State))
	}
	if c.ClearPairing {
		sets = append(sets, "qr_code = NULL", "qr_expires_at = NULL", "pairing_code = ''")
	}
	if c.ClearLastError {
		sets = append(sets, "last_error = ''")
	}
	// Values set here come after the clears: of two assignments to one
	// column, SQLite applies the last.
	if c.Proxy != nil {
		sets = append(sets, "proxy = ?")
		args = append(args, *c.Proxy)
	}
	if c.QR != nil {
		sets = append(sets, "qr_code = ?", "qr_expires_at = ?")
		args = append(args, c.QR.Code, c.QR.ExpiresAt.UnixMilli())
	}
	for _, f := range []struct{ col, v string }{
		{"pairing_code", c.PairingCode}, {"jid", c.JID}, {"push_name", c.PushName}, {"last_error", c.LastError},
	} {
		if f.v != "" {
			sets = append(sets, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	args = append(args, id)
	q := `UPDATE accounts SET ` + strings.Join(sets, ", ") + ` WHERE id = ?`
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("update account %q: %w", id, err)
	}
	return nil
}
