package throttle

import (
	"context"
	"database/sql"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/store"
)

// SendCount is one account's count of one day, as `wildcatd store copy`
// moves it: a daemon moved to another engine mid-day keeps its cap.
type SendCount struct {
	AccountID string `bson:"accountId"`
	Day       string `bson:"day"`
	Count     int    `bson:"count"`
}

// Count counts the stored (account, day) counts.
func (c *SQLiteCounts) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := c.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM send_counts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count send counts: %w", err)
	}
	return n, nil
}

// Export hands every count to fn in batches, by account and day.
func (c *SQLiteCounts) Export(ctx context.Context, batch int, fn func([]*SendCount) error) error {
	var account, day string
	for {
		out, err := c.page(ctx, account, day, batch)
		if err != nil {
			return fmt.Errorf("export send counts: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		if err := fn(out); err != nil {
			return err
		}
		last := out[len(out)-1]
		account, day = last.AccountID, last.Day
	}
}

func (c *SQLiteCounts) page(ctx context.Context, account, day string, n int) ([]*SendCount, error) {
	rows, err := c.db.Reader().QueryContext(ctx, `SELECT account_id, day, count FROM send_counts
		WHERE (account_id, day) > (?, ?) ORDER BY account_id, day LIMIT ?`, account, day, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*SendCount
	for rows.Next() {
		var s SendCount
		if err := rows.Scan(&s.AccountID, &s.Day, &s.Count); err != nil {
			return nil, err
		}
		out = append(out, &s)
	}
	return out, rows.Err()
}

// Import stores the counts, replacing stored ones of the same account and
// day.
func (c *SQLiteCounts) Import(ctx context.Context, counts []*SendCount) error {
	err := c.db.Write(ctx, func(tx *sql.Tx) error {
		for _, s := range counts {
			if _, err := c.db.Exec(ctx, tx, `INSERT INTO send_counts (account_id, day, count) VALUES (?, ?, ?)
				ON CONFLICT (account_id, day) DO UPDATE SET count = excluded.count`, s.AccountID, s.Day, s.Count); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import send counts: %w", err)
	}
	return nil
}

// Count counts the stored (account, day) counts.
func (c *MongoCounts) Count(ctx context.Context) (int64, error) {
	return store.Count(ctx, c.coll, nil)
}

// Export hands every count to fn in batches, by account and day.
func (c *MongoCounts) Export(ctx context.Context, batch int, fn func([]*SendCount) error) error {
	// Not by _id: "a-b/…" sorts before "a/…", the other engine's order
	// (account, day) the other way round.
	return store.Export(ctx, c.coll, nil, bson.D{{Key: "accountId", Value: 1}, {Key: "day", Value: 1}}, batch, fn)
}

// Import stores the counts, replacing stored ones of the same account and
// day.
func (c *MongoCounts) Import(ctx context.Context, counts []*SendCount) error {
	ids, docs := make([]any, len(counts)), make([]any, len(counts))
	for i, s := range counts {
		ids[i], docs[i] = countID(s.AccountID, s.Day), s
	}
	return store.ReplaceAll(ctx, c.coll, ids, docs)
}
