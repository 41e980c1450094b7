package messages

import "time"

// SetNow replaces the store's clock (storedAt and friends).
func SetNow(s *Store, now func() time.Time) { s.now = now }

// SetIdempotencyNow replaces the idempotency store's clock.
func SetIdempotencyNow(s *Idempotency, now func() time.Time) { s.now = now }
