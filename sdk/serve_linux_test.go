package sdk_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/sdk"
)

// alive reports whether pid is a running process (a zombie is not: it has
// exited and waits only to be reaped).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state …; comm may contain spaces and parentheses.
	s := string(b)
	rest := s[strings.LastIndexByte(s, ')')+2:]
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// TestServeExitsWhenItsHostDies: a plugin whose host is killed with SIGKILL
// — no parent-death signal set, nobody to stop it — notices its parent is
// gone and exits instead of living on under init.
func TestServeExitsWhenItsHostDies(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "echo")
	if out, err := exec.Command("go", "build", "-o", bin, "./examples/echo").CombinedOutput(); err != nil {
		t.Fatalf("build echo: %v\n%s", err, out)
	}
	// The "host" is a shell that starts the plugin, prints its pid and
	// waits: killing it orphans the plugin as a killed wildcatd would. It
	// names itself the host, as the daemon does.
	host := exec.Command("sh", "-c", sdk.HostPIDEnv+`=$$ "$0" >/dev/null 2>&1 & echo $!; wait`, bin)
	host.Env = append(os.Environ(), sdk.MagicCookieKey+"="+sdk.MagicCookieValue)
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	var line [32]byte
	n, err := out.Read(line[:])
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatalf("plugin pid %q: %v", line[:n], err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	// Serving: the plugin runs as long as its host does.
	poll.Until(t, 30*time.Second, func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.HasPrefix(string(b), bin) {
			return fmt.Errorf("plugin %d not running %s yet (%q, %v)", pid, bin, b, err)
		}
		return nil
	})
	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	poll.Until(t, 10*time.Second, func() error {
		if alive(pid) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			return fmt.Errorf("plugin %d still running after its host was killed: %s", pid, b)
		}
		return nil
	})
}
