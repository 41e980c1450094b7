package messages

import (
	"context"
	"time"

	"github.com/wildcathub/wildcat/core/store/sqlite"
)

// SetNow replaces the store's clock (storedAt and friends).
func SetNow(s *Store, now func() time.Time) { s.now = now }

// SetIdempotencyNow replaces the idempotency store's clock.
func SetIdempotencyNow(s *Idempotency, now func() time.Time) { s.now = now }

// SQLiteRowCols and SQLiteRowArgs are the columns of a messages row and a
// message's values for them, in the same order: benchmarks seed the table
// through them in big transactions, with exactly what Insert writes.
const SQLiteRowCols = rowCols

func SQLiteRowArgs(m *Message) ([]any, error) { return rowArgs(m) }

// NewSQLiteTextIndexEvery is NewSQLite with the trigram index taking in
// new rows at most every `every`.
func NewSQLiteTextIndexEvery(db *sqlite.DB, every time.Duration) *Store {
	return newSQLite(db, nil, every)
}

// CatchUpText indexes what the trigram index lacks, as a search does first.
func CatchUpText(ctx context.Context, s *Store) error { return s.b.(*sqliteBackend).catchUpText(ctx) }
