package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
)

// TestStatusWhileRestarting: a plugin whose replacement cannot start stays
// restarting, calls fail with ErrUnavailable, and its status still shows
// what the last process reported (version, capabilities) with the reason.
func TestStatusWhileRestarting(t *testing.T) {
	// A copy of the test plugin that can be swapped for a non-plugin.
	path := filepath.Join(t.TempDir(), "swapped")
	b, err := os.ReadFile(bin("testplugin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	h := start(t, Config{Path: path})
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho not a plugin any more\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := h.p.Handle(context.Background(), msg("crash")); err == nil {
		t.Fatal("a call whose process exited must fail")
	}
	poll.Until(t, 30*time.Second, func() error {
		st := h.p.Status()
		if st.State != StateRestarting || !strings.Contains(st.LastError, "is not a Wildcat plugin") {
			return fmt.Errorf("state %s, last error %q", st.State, st.LastError)
		}
		return nil
	})
	st := h.p.Status()
	if st.Version != "1.2.3" || st.Plugin != "testplugin" || fmt.Sprint(st.Capabilities) != "[inline sink]" || st.PID != 0 || st.StartedAt != nil || st.Restarts != 1 {
		t.Fatalf("status while restarting: %+v", st)
	}
	if _, err := h.p.Handle(context.Background(), msg("ping")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("call while restarting: %v", err)
	}
	// go-plugin's line about the exit names the executable as path, and
	// plugin stays the declared name.
	var exited string
	for _, line := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(line, `"msg":"plugin process exited"`) {
			exited = line
			break
		}
	}
	if !strings.Contains(exited, `"path":"`+path+`"`) || strings.Count(exited, `"plugin":`) != 1 || !strings.Contains(exited, `"plugin":"tp"`) {
		t.Fatalf("exit log line: %q", exited)
	}
}
