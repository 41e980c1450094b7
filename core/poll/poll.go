// Package poll waits for a condition to hold, instead of sleeping for a
// guessed duration. Tests use it; it does not import package testing, so
// nothing of the test framework is linked into a binary that imports it.
package poll

import "time"

// T is what Until needs of a test; *testing.T, *testing.B and testing.TB
// satisfy it.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Until calls check every few milliseconds until it returns nil, and fails
// the test with check's last error when timeout passes first. The timeout
// is a ceiling against hangs, not a performance assertion.
func Until(t T, timeout time.Duration, check func() error) {
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
			return
		}
		time.Sleep(wait)
		wait = min(wait*2, 200*time.Millisecond)
	}
}
