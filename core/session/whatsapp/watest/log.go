package watest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// Logger returns a whatsmeow logger that writes to t.Logf at minLevel
// ("DEBUG", "INFO", "WARN" or "ERROR") and above, and goes quiet when the
// test ends: whatsmeow's goroutines may log after it, which t.Logf forbids.
func Logger(t testing.TB, minLevel string) waLog.Logger {
	l := &testLogger{state: &loggerState{t: t}, min: levelRank(minLevel)}
	t.Cleanup(func() {
		l.state.mu.Lock()
		l.state.done = true
		l.state.mu.Unlock()
	})
	return l
}

type loggerState struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

type testLogger struct {
	state  *loggerState
	module string
	min    int
}

func levelRank(level string) int {
	switch strings.ToUpper(level) {
	case "DEBUG":
		return 0
	case "INFO":
		return 1
	case "WARN":
		return 2
	}
	return 3
}

func (l *testLogger) logf(level, msg string, args []any) {
	if levelRank(level) < l.min {
		return
	}
	l.state.mu.Lock()
	defer l.state.mu.Unlock()
	if !l.state.done {
		l.state.t.Helper()
		l.state.t.Logf("%s [%s] %s", l.module, level, fmt.Sprintf(msg, args...))
	}
}

func (l *testLogger) Debugf(msg string, args ...any) {
	l.state.t.Helper()
	l.logf("DEBUG", msg, args)
}

func (l *testLogger) Infof(msg string, args ...any) {
	l.state.t.Helper()
	l.logf("INFO", msg, args)
}

func (l *testLogger) Warnf(msg string, args ...any) {
	l.state.t.Helper()
	l.logf("WARN", msg, args)
}

func (l *testLogger) Errorf(msg string, args ...any) {
	l.state.t.Helper()
	l.logf("ERROR", msg, args)
}

func (l *testLogger) Sub(module string) waLog.Logger {
	if l.module != "" {
		module = l.module + "/" + module
	}
	return &testLogger{state: l.state, module: module, min: l.min}
}
