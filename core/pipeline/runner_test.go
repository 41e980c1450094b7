package pipeline

import (
	"bytes"
	"runtime"
	"testing"
)

// goroutineID parses this goroutine's number from its stack header.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	return string(f[1]) // "goroutine N [running]:"
}

// A stage call after an earlier one has finished runs on the earlier one's
// goroutine (its stack already grown), not on a new one.
func TestStageCallsReuseTheirGoroutine(t *testing.T) {
	p := &runnerPool{calls: make(chan func())}
	first := make(chan string, 1)
	p.run(func() { first <- goroutineID() })
	id := <-first
	// The runner is idle once it waits on runners again: a send then
	// succeeds. Until then run would start another goroutine.
	second := make(chan string, 1)
	p.calls <- func() { second <- goroutineID() }
	if got := <-second; got != id {
		t.Fatalf("second call ran on goroutine %s, the first on %s", got, id)
	}
}
