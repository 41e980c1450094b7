package webhooks

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// The engine-to-engine copy (wildcatd store copy) on SQLite: every
// endpoint exactly as stored, secrets and health included.

// Count counts the endpoints.
func (s *SQLiteEndpoints) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM webhook_endpoints`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count webhook endpoints: %w", err)
	}
	return n, nil
}

// Export hands every endpoint to fn in batches, by id.
func (s *SQLiteEndpoints) Export(ctx context.Context, batch int, fn func([]*Endpoint) error) error {
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

var upsertEndpoint = func() string {
	cols := strings.Split(endpointColumns, ",")
	set := make([]string, 0, len(cols)-1)
	for _, c := range cols[1:] {
		c = strings.TrimSpace(c)
		set = append(set, c+" = excluded."+c)
	}
	return `INSERT INTO webhook_endpoints (` + endpointColumns + `) VALUES (?` + strings.Repeat(", ?", len(cols)-1) + `)
		ON CONFLICT (id) DO UPDATE SET ` + strings.Join(set, ", ")
}()

// Import stores the endpoints with their ids, replacing stored ones.
func (s *SQLiteEndpoints) Import(ctx context.Context, es []*Endpoint) error {
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		for _, e := range es {
			args, err := endpointArgs(e)
			if err != nil {
				return fmt.Errorf("endpoint %q: %w", e.ID, err)
			}
			if _, err := tx.ExecContext(ctx, upsertEndpoint, args...); err != nil {
				return fmt.Errorf("endpoint %q: %w", e.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import webhook endpoints: %w", err)
	}
	return nil
}
