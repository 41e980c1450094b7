package outbox

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/sqlite"
)

// The engine-to-engine copy (wildcatd store copy) moves every job exactly
// as stored — state, attempts, schedule, lease, attempt log, payload —
// through copy_mongo.go and copy_sqlite.go. A job copied while processing
// keeps its lease: the daemon on the target claims it again once the lease
// ends, as after a crash.

// MongoJobs is the jobs of the outbox collection in db, for a copy.
type MongoJobs struct{ b *mongoBackend }

// NewMongoJobs returns the jobs in db's outbox collection.
func NewMongoJobs(db *mongo.Database) *MongoJobs {
	return &MongoJobs{b: &mongoBackend{c: db.Collection(store.Outbox)}}
}

// SQLiteJobs is the jobs of the embedded engine's outbox_jobs table, for a
// copy.
type SQLiteJobs struct{ b *sqliteBackend }

// NewSQLiteJobs returns the jobs in db (opened with SQLiteSchema).
func NewSQLiteJobs(db *sqlite.DB) *SQLiteJobs { return &SQLiteJobs{b: &sqliteBackend{db: db}} }

// EnsureMongoIndexes creates the outbox collection's indexes in db (for a
// copy's MongoDB target, before a daemon ever ran on it).
func EnsureMongoIndexes(ctx context.Context, db *mongo.Database) error {
	return (&mongoBackend{c: db.Collection(store.Outbox)}).ensureIndexes(ctx)
}
