package sim

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

// SQLiteGroups keeps the sim network's groups in the sim_groups table.
type SQLiteGroups struct {
	db *sqlite.DB
}

// NewSQLiteGroups returns the store on db (migrated with SQLiteSchema).
func NewSQLiteGroups(db *sqlite.DB) *SQLiteGroups { return &SQLiteGroups{db: db} }

var _ GroupStore = (*SQLiteGroups)(nil)

// Groups implements GroupStore.
func (s *SQLiteGroups) Groups(ctx context.Context) ([]*Group, error) {
	var out []*Group
	err := s.Export(ctx, 500, func(gs []*Group) error { out = append(out, gs...); return nil })
	return out, err
}

// SaveGroup implements GroupStore.
func (s *SQLiteGroups) SaveGroup(ctx context.Context, g *Group) error {
	if err := s.Import(ctx, []*Group{g}); err != nil {
		return fmt.Errorf("store sim group %s: %w", g.JID, err)
	}
	return nil
}

// Count counts the stored groups (the engine-to-engine copy).
func (s *SQLiteGroups) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM sim_groups`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count sim groups: %w", err)
	}
	return n, nil
}

// Export hands every group to fn in batches, by JID.
func (s *SQLiteGroups) Export(ctx context.Context, batch int, fn func([]*Group) error) error {
	after := ""
	for {
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT jid, doc FROM sim_groups WHERE jid > ? ORDER BY jid LIMIT ?`, after, batch)
		if err != nil {
			return fmt.Errorf("read sim groups: %w", err)
		}
		var out []*Group
		for rows.Next() {
			var jid, doc string
			if err := rows.Scan(&jid, &doc); err != nil {
				rows.Close()
				return fmt.Errorf("read sim groups: %w", err)
			}
			var g Group
			if err := json.Unmarshal([]byte(doc), &g); err != nil {
				rows.Close()
				return fmt.Errorf("read sim group %s: %w", jid, err)
			}
			g.JID = jid
			out = append(out, &g)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("read sim groups: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		if err := fn(out); err != nil {
			return err
		}
		after = out[len(out)-1].JID
	}
}

// Import stores the groups, replacing stored ones.
func (s *SQLiteGroups) Import(ctx context.Context, gs []*Group) error {
	return s.db.Write(ctx, func(tx *sql.Tx) error {
		for _, g := range gs {
			doc, err := json.Marshal(g)
			if err != nil {
				return fmt.Errorf("encode sim group %s: %w", g.JID, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO sim_groups (jid, doc, updated_at) VALUES (?, ?, ?)
				ON CONFLICT (jid) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`,
				g.JID, string(doc), g.UpdatedAt.UnixMilli()); err != nil {
				return fmt.Errorf("sim group %s: %w", g.JID, err)
			}
		}
		return nil
	})
}
