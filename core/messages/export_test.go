package messages

import "time"

// SetNow replaces the store's clock (storedAt and friends).
func SetNow(s *Store, now func() time.Time) { s.now = now }
