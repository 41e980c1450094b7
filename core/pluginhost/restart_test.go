package pluginhost

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
)

// waitRecorder records the restart backoffs the host waits out.
type waitRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (w *waitRecorder) after(d time.Duration) <-chan time.Time {
	w.mu.Lock()
	w.waits = append(w.waits, d)
	w.mu.Unlock()
	return time.After(d)
}

func (w *waitRecorder) get() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.waits...)
}

// TestFailedHealthChecksRestartThePlugin: a plugin process that stops
// answering (SIGSTOP: alive, connected, silent) fails its health checks and
// is killed and replaced after HealthFailures failures in a row (README,
// Plugins: "a plugin whose process exits or fails its health checks is
// restarted with backoff").
func TestFailedHealthChecksRestartThePlugin(t *testing.T) {
	h := start(t, Config{}, func(o *Options) {
		o.HealthInterval, o.HealthTimeout, o.HealthFailures = 20*time.Millisecond, 100*time.Millisecond, 3
	})
	pid := h.p.Status().PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	poll.Until(t, 30*time.Second, func() error {
		if st := h.p.Status(); st.State != StateRunning || st.Restarts != 1 || st.PID == pid {
			return fmt.Errorf("state %s, restarts %d, pid %d (stopped %d)", st.State, st.Restarts, st.PID, pid)
		}
		return nil
	})
	if st := h.p.Status(); !strings.Contains(st.LastError, "3 health checks failed in a row") {
		t.Fatalf("restarted for %q, want the failed health checks", st.LastError)
	}
	if acts, err := h.p.Handle(context.Background(), msg("ping")); err != nil || len(acts) != 1 || acts[0].Send.Text != "pong" {
		t.Fatalf("after the restart: %+v %v", acts, err)
	}
}

// TestRestartBackoffGrows: while the plugin's program cannot be launched,
// each wait before the next attempt doubles from RestartBackoff.Min up to
// Max; once the program is back the plugin runs again. The waits are
// recorded where the host waits, so no wall-clock gap is compared.
func TestRestartBackoffGrows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tp")
	copyFile(t, bin("testplugin"), path)
	rec := &waitRecorder{}
	const minWait, maxWait = time.Millisecond, 8 * time.Millisecond
	h := start(t, Config{Path: path}, func(o *Options) {
		o.RestartBackoff = Backoff{Min: minWait, Max: maxWait}
		o.after = rec.after
	})
	// Replace the program with one that is not a plugin, then crash the
	// running one: every relaunch fails.
	broken := filepath.Join(t.TempDir(), "tp")
	copyFile(t, bin("notaplugin"), broken)
	if err := os.Rename(broken, path); err != nil {
		t.Fatal(err)
	}
	if _, err := h.p.Handle(context.Background(), msg("crash")); err == nil {
		t.Fatal("a call whose process exited must fail")
	}
	want := []time.Duration{minWait, 2 * minWait, 4 * minWait, maxWait, maxWait, maxWait}
	poll.Until(t, 60*time.Second, func() error {
		if got := rec.get(); len(got) < len(want) {
			return fmt.Errorf("waits so far %v", got)
		}
		return nil
	})
	if got := rec.get()[:len(want)]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("restart waits %v, want %v", got, want)
	}
	if st := h.p.Status(); st.State != StateRestarting || st.Restarts != 1 {
		t.Fatalf("while the program is broken: %+v", st)
	}
	// The program is back: the next attempt runs it.
	good := filepath.Join(t.TempDir(), "tp")
	copyFile(t, bin("testplugin"), good)
	if err := os.Rename(good, path); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 60*time.Second, func() error {
		if st := h.p.Status(); st.State != StateRunning {
			return fmt.Errorf("state %s", st.State)
		}
		return nil
	})
	if acts, err := h.p.Handle(context.Background(), msg("ping")); err != nil || len(acts) != 1 {
		t.Fatalf("after the program came back: %+v %v", acts, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
