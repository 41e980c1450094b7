package messages

import "time"

// SetNow replaces the store's clock (storedAt and friends).
func SetNow(s *Store, now func() time.Time) { s.now = now }

// SetIdempotencyNow replaces the idempotency store's clock.
func SetIdempotencyNow(s *Idempotency, now func() time.Time) { s.now = now }

// SQLiteRowCols and SQLiteRowArgs are the columns of a messages row and a
// message's values for them, in the same order: benchmarks seed the table
// through them in big transactions, with exactly what Insert writes.
const SQLiteRowCols = rowCols

func SQLiteRowArgs(m *Message) ([]any, error) { return rowArgs(m) }
