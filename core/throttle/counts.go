package throttle

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// SQLiteSchema is the send_counts table of the embedded engine.
var SQLiteSchema = sqlite.SchemaIn("throttle", schemaFS, "schema")

// SQLiteCounts keeps the counts in send_counts.
type SQLiteCounts struct{ db *sqlite.DB }

// NewSQLiteCounts returns the counts on db (migrated with SQLiteSchema).
func NewSQLiteCounts(db *sqlite.DB) *SQLiteCounts { return &SQLiteCounts{db: db} }

var _ Counts = (*SQLiteCounts)(nil)

// Add implements Counts.
func (c *SQLiteCounts) Add(ctx context.Context, accountID, day string, n int) error {
	err := c.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := c.db.Exec(ctx, tx, `INSERT INTO send_counts (account_id, day, count) VALUES (?, ?, ?)
			ON CONFLICT (account_id, day) DO UPDATE SET count = count + excluded.count`, accountID, day, n)
		return err
	})
	if err != nil {
		return fmt.Errorf("add to send count: %w", err)
	}
	return nil
}

// Get implements Counts.
func (c *SQLiteCounts) Get(ctx context.Context, accountID, day string) (int, error) {
	var n int
	err := c.db.Reader().QueryRowContext(ctx, `SELECT count FROM send_counts WHERE account_id = ? AND day = ?`, accountID, day).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read send count: %w", err)
	}
	return n, nil
}

// Purge implements Counts.
func (c *SQLiteCounts) Purge(ctx context.Context, before string) error {
	err := c.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := c.db.Exec(ctx, tx, `DELETE FROM send_counts WHERE day < ?`, before)
		return err
	})
	if err != nil {
		return fmt.Errorf("purge send counts: %w", err)
	}
	return nil
}

// Collection is the MongoDB collection of the counts: one document per
// (account, day) with _id "{account}/{day}", so every read and write is an
// _id point operation.
const Collection = "send_counts"

// MongoCounts keeps the counts in the send_counts collection.
type MongoCounts struct{ coll *mongo.Collection }

// NewMongoCounts returns the counts on db.
func NewMongoCounts(db *mongo.Database) *MongoCounts {
	return &MongoCounts{coll: db.Collection(Collection)}
}

var _ Counts = (*MongoCounts)(nil)

func countID(accountID, day string) string { return accountID + "/" + day }

// Add implements Counts.
func (c *MongoCounts) Add(ctx context.Context, accountID, day string, n int) error {
	_, err := c.coll.UpdateByID(ctx, countID(accountID, day),
		bson.D{{Key: "$inc", Value: bson.D{{Key: "count", Value: n}}},
			{Key: "$setOnInsert", Value: bson.D{{Key: "accountId", Value: accountID}, {Key: "day", Value: day}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("add to send count: %w", err)
	}
	return nil
}

// Get implements Counts.
func (c *MongoCounts) Get(ctx context.Context, accountID, day string) (int, error) {
	var d struct {
		Count int `bson:"count"`
	}
	err := c.coll.FindOne(ctx, bson.D{{Key: "_id", Value: countID(accountID, day)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read send count: %w", err)
	}
	return d.Count, nil
}

// Purge implements Counts.
func (c *MongoCounts) Purge(ctx context.Context, before string) error {
	if _, err := c.coll.DeleteMany(ctx, bson.D{{Key: "day", Value: bson.D{{Key: "$lt", Value: before}}}}); err != nil {
		return fmt.Errorf("purge send counts: %w", err)
	}
	return nil
}
