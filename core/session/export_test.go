package session

import "time"

// SetAfter replaces how m waits between connect attempts (time.After), so
// a test can see the backoff the manager chose. Call it before Start.
func SetAfter(m *Manager, after func(time.Duration) <-chan time.Time) { m.after = after }
