package webhooks

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

// SQLiteSchema is the registry's table on the embedded engine
// (webhook_endpoints).
var SQLiteSchema = sqlite.SchemaIn("webhooks", schemaFS, "schema")

// SQLiteEndpoints keeps the endpoints in the webhook_endpoints table.
type SQLiteEndpoints struct {
	db *sqlite.DB
}

// NewSQLiteEndpoints returns the store on db (migrated with SQLiteSchema).
func NewSQLiteEndpoints(db *sqlite.DB) *SQLiteEndpoints { return &SQLiteEndpoints{db: db} }

var _ EndpointStore = (*SQLiteEndpoints)(nil)

const endpointColumns = `id, url, events, accounts, description, headers, enabled, rate_limit, source,
	secret, previous_secret, previous_secret_until, failing_since, disabled_reason, disabled_at, created_at, updated_at, sources, batch, ordered`

// endpointArgs are e's values in endpointColumns order.
func endpointArgs(e *Endpoint) ([]any, error) {
	events, err := json.Marshal(orEmpty(e.Events))
	if err != nil {
		return nil, err
	}
	accounts, err := json.Marshal(orEmpty(e.Accounts))
	if err != nil {
		return nil, err
	}
	sources, err := json.Marshal(orEmpty(e.Sources))
	if err != nil {
		return nil, err
	}
	headers := e.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	hdr, err := json.Marshal(headers)
	if err != nil {
		return nil, err
	}
	return []any{e.ID, e.URL, string(events), string(accounts), e.Description, string(hdr), e.Enabled, e.RateLimit, e.Source,
		e.Secret, e.PreviousSecret, millisOrNull(e.PreviousSecretUntil), millisOrNull(e.FailingSince), e.DisabledReason,
		millisOrNull(e.DisabledAt), e.CreatedAt.UnixMilli(), e.UpdatedAt.UnixMilli(), string(sources), e.Batch, e.Ordered}, nil
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

func scanEndpoint(r rowScanner) (*Endpoint, error) {
	var (
		e                            Endpoint
		events, accounts, headers    string
		sources                      string
		prevUntil, failing, disabled sql.NullInt64
		created, updated             int64
	)
	if err := r.Scan(&e.ID, &e.URL, &events, &accounts, &e.Description, &headers, &e.Enabled, &e.RateLimit, &e.Source,
		&e.Secret, &e.PreviousSecret, &prevUntil, &failing, &e.DisabledReason, &disabled, &created, &updated, &sources, &e.Batch, &e.Ordered); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(events), &e.Events); err != nil {
		return nil, fmt.Errorf("events of %q: %w", e.ID, err)
	}
	if err := json.Unmarshal([]byte(accounts), &e.Accounts); err != nil {
		return nil, fmt.Errorf("accounts of %q: %w", e.ID, err)
	}
	if err := json.Unmarshal([]byte(headers), &e.Headers); err != nil {
		return nil, fmt.Errorf("headers of %q: %w", e.ID, err)
	}
	if err := json.Unmarshal([]byte(sources), &e.Sources); err != nil {
		return nil, fmt.Errorf("sources of %q: %w", e.ID, err)
	}
	if len(e.Sources) == 0 {
		e.Sources = nil // as MongoDB reads an omitted field: the Registry's default applies
	}
	e.PreviousSecretUntil, e.FailingSince, e.DisabledAt = timeOrNil(prevUntil), timeOrNil(failing), timeOrNil(disabled)
	e.CreatedAt, e.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &e, nil
}

// Insert implements EndpointStore.
func (s *SQLiteEndpoints) Insert(ctx context.Context, e *Endpoint) error {
	args, err := endpointArgs(e)
	if err != nil {
		return fmt.Errorf("store webhook endpoint %q: %w", e.ID, err)
	}
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhook_endpoints (`+endpointColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		return err
	})
	if sqlite.IsConstraint(err) {
		return fmt.Errorf("%w: %q", ErrExists, e.ID)
	}
	if err != nil {
		return fmt.Errorf("store webhook endpoint %q: %w", e.ID, err)
	}
	return nil
}

// Get implements EndpointStore.
func (s *SQLiteEndpoints) Get(ctx context.Context, id string) (*Endpoint, error) {
	e, err := scanEndpoint(s.db.Reader().QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read webhook endpoint %q: %w", id, err)
	}
	return e, nil
}

// List implements EndpointStore.
func (s *SQLiteEndpoints) List(ctx context.Context) ([]*Endpoint, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	defer rows.Close()
	var out []*Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("list webhook endpoints: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	return out, nil
}

// Replace implements EndpointStore.
func (s *SQLiteEndpoints) Replace(ctx context.Context, e *Endpoint) error {
	args, err := endpointArgs(e)
	if err != nil {
		return fmt.Errorf("store webhook endpoint %q: %w", e.ID, err)
	}
	var n int64
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_endpoints SET url = ?2, events = ?3, accounts = ?4, description = ?5,
			headers = ?6, enabled = ?7, rate_limit = ?8, source = ?9, secret = ?10, previous_secret = ?11,
			previous_secret_until = ?12, failing_since = ?13, disabled_reason = ?14, disabled_at = ?15,
			created_at = ?16, updated_at = ?17, sources = ?18, batch = ?19, ordered = ?20
			WHERE id = ?1`, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("store webhook endpoint %q: %w", e.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, e.ID)
	}
	return nil
}

// Delete implements EndpointStore.
func (s *SQLiteEndpoints) Delete(ctx context.Context, id string) error {
	var n int64
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE id = ?`, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("delete webhook endpoint %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return nil
}

// SetFailingSince implements EndpointStore.
func (s *SQLiteEndpoints) SetFailingSince(ctx context.Context, id string, t *time.Time) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhook_endpoints SET failing_since = ? WHERE id = ?`, millisOrNull(t), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("record health of webhook endpoint %q: %w", id, err)
	}
	return nil
}

// Disable implements EndpointStore: the UPDATE matches only while enabled.
func (s *SQLiteEndpoints) Disable(ctx context.Context, id, reason string, at time.Time) (bool, error) {
	var n int64
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?, disabled_at = ?, updated_at = ?
			WHERE id = ? AND enabled = 1`, reason, at.UnixMilli(), at.UnixMilli(), id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("disable webhook endpoint %q: %w", id, err)
	}
	return n > 0, nil
}
