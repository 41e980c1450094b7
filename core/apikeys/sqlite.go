package apikeys

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// SQLiteSchema is the keys' table on the embedded engine (api_keys).
var SQLiteSchema = sqlite.SchemaIn("apikeys", schemaFS, "schema")

// SQLite keeps the keys in the api_keys table.
type SQLite struct{ db *sqlite.DB }

// NewSQLite returns the store on db (migrated with SQLiteSchema).
func NewSQLite(db *sqlite.DB) *SQLite { return &SQLite{db: db} }

var _ Store = (*SQLite)(nil)

const keyColumns = `id, name, scopes, accounts, hash, expires_at, created_at, rotated_at`

func keyArgs(k *Key) ([]any, error) {
	scopes, err := json.Marshal(orEmpty(k.Scopes))
	if err != nil {
		return nil, err
	}
	accounts, err := json.Marshal(orEmpty(k.Accounts))
	if err != nil {
		return nil, err
	}
	return []any{k.ID, k.Name, string(scopes), string(accounts), k.Hash, millisOrNull(k.ExpiresAt), k.CreatedAt.UnixMilli(), millisOrNull(k.RotatedAt)}, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func millisOrNull(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func timeOrNil(ms sql.NullInt64) *time.Time {
	if !ms.Valid {
		return nil
	}
	t := time.UnixMilli(ms.Int64).UTC()
	return &t
}

type rowScanner interface{ Scan(dest ...any) error }

func scanKey(r rowScanner) (*Key, error) {
	var (
		k                Key
		scopes, accounts string
		expires, rotated sql.NullInt64
		created          int64
	)
	if err := r.Scan(&k.ID, &k.Name, &scopes, &accounts, &k.Hash, &expires, &created, &rotated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return nil, fmt.Errorf("scopes of %q: %w", k.ID, err)
	}
	if err := json.Unmarshal([]byte(accounts), &k.Accounts); err != nil {
		return nil, fmt.Errorf("accounts of %q: %w", k.ID, err)
	}
	if len(k.Accounts) == 0 {
		k.Accounts = nil // as MongoDB reads an omitted field
	}
	k.ExpiresAt, k.RotatedAt = timeOrNil(expires), timeOrNil(rotated)
	k.CreatedAt = time.UnixMilli(created).UTC()
	return &k, nil
}

// Insert implements Store.
func (s *SQLite) Insert(ctx context.Context, k *Key) error {
	args, err := keyArgs(k)
	if err != nil {
		return fmt.Errorf("store api key %q: %w", k.ID, err)
	}
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		return err
	})
	if sqlite.IsConstraint(err) {
		return fmt.Errorf("%w: %q", ErrExists, k.ID)
	}
	if err != nil {
		return fmt.Errorf("store api key %q: %w", k.ID, err)
	}
	return nil
}

// Get implements Store.
func (s *SQLite) Get(ctx context.Context, id string) (*Key, error) {
	k, err := scanKey(s.db.Reader().QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read api key %q: %w", id, err)
	}
	return k, nil
}

// List implements Store.
func (s *SQLite) List(ctx context.Context) ([]*Key, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []*Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return out, nil
}

// exec runs one statement in a write and returns the rows it changed.
func (s *SQLite) exec(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// SetHash implements Store.
func (s *SQLite) SetHash(ctx context.Context, id string, hash []byte, rotatedAt time.Time) error {
	n, err := s.exec(ctx, `UPDATE api_keys SET hash = ?, rotated_at = ? WHERE id = ?`, hash, rotatedAt.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("rotate api key %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return nil
}

// Delete implements Store.
func (s *SQLite) Delete(ctx context.Context, id string) error {
	n, err := s.exec(ctx, `DELETE FROM api_keys WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete api key %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return nil
}

// Count implements Store (and the copy's counting).
func (s *SQLite) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM api_keys`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count api keys: %w", err)
	}
	return n, nil
}

// Export hands every key to fn in batches, by id (wildcatd store copy).
func (s *SQLite) Export(ctx context.Context, batch int, fn func([]*Key) error) error {
	all, err := s.List(ctx) // a handful: one read
	if err != nil {
		return err
	}
	for i := 0; i < len(all); i += batch {
		if err := fn(all[i:min(i+batch, len(all))]); err != nil {
			return err
		}
	}
	return nil
}

// Import stores the keys with their ids, replacing stored ones.
func (s *SQLite) Import(ctx context.Context, ks []*Key) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		for _, k := range ks {
			args, err := keyArgs(k)
			if err != nil {
				return fmt.Errorf("api key %q: %w", k.ID, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, scopes = excluded.scopes, accounts = excluded.accounts,
				hash = excluded.hash, expires_at = excluded.expires_at, created_at = excluded.created_at, rotated_at = excluded.rotated_at`, args...); err != nil {
				return fmt.Errorf("api key %q: %w", k.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import api keys: %w", err)
	}
	return nil
}
