// Package poll waits in tests for a condition to hold, instead of sleeping
// for a guessed duration.
package poll

import (
	"testing"
	"time"
)

// Until calls check every few milliseconds until it returns nil, and fails
// the test with check's last error when timeout passes first. The timeout
// is a ceiling against hangs, not a performance assertion.
func Until(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(wait)
		wait = min(wait*2, 200*time.Millisecond)
	}
}
