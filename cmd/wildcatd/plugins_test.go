package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
)

// TestRunPluginFailures: `wildcatd run` with a plugin that cannot start
// exits 1 with one line naming the plugin and saying what is wrong; a
// stage naming an undeclared plugin is a configuration error (exit 2) for
// `config check` and `run` alike.
func TestRunPluginFailures(t *testing.T) {
	notAPlugin := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(notAPlugin, []byte("#!/bin/sh\necho 'hello, I am not a plugin'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("data_dir: %s\nhttp:\n  addr: 127.0.0.1:0\n", t.TempDir())

	for _, tt := range []struct {
		name, plugins string
		want          []string
	}{
		{"not a plugin", fmt.Sprintf("plugins:\n  greeter: {path: %s}\n", notAPlugin),
			[]string{`plugin "greeter"`, notAPlugin, "is not a Wildcat plugin", "sdk.Serve"}},
		{"missing file", "plugins:\n  gone: {path: bin/plugins/gone}\n",
			[]string{`plugin "gone"`, "plugins.gone.path", "no such file"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, base+tt.plugins)
			// The check cannot know: the file is only run at start.
			if r := wildcatd(t, nil, "config", "check", "--config", cfg); r.code != 0 {
				t.Fatalf("config check: %+v", r)
			}
			r := wildcatd(t, nil, "run", "--config", cfg, "--log-format", "json")
			if r.code != 1 {
				t.Fatalf("run: exit %d, want 1 (stderr %q)", r.code, r.stderr)
			}
			var line string
			for _, l := range strings.Split(r.stderr, "\n") {
				if strings.HasPrefix(l, "wildcatd: ") {
					line = l
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Fatalf("run: stderr line %q does not say %q; stderr:\n%s", line, w, r.stderr)
				}
			}
		})
	}

	t.Run("undeclared plugin", func(t *testing.T) {
		cfg := writeConfig(t, base+"pipeline:\n  - {name: hooks, plugin: webhook, mode: sink}\n")
		for _, args := range [][]string{{"config", "check", "--config", cfg}, {"run", "--config", cfg}} {
			r := wildcatd(t, nil, args...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != 2 || len(lines) != 1 || !strings.Contains(lines[0], `config: pipeline[0] "hooks": unknown plugin "webhook"`) {
				t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
			}
		}
	})
}

// TestPluginsDieWithAKilledDaemon: kill -9 of wildcatd, which runs no
// shutdown code, takes its plugin processes with it instead of leaving them
// running under init.
func TestPluginsDieWithAKilledDaemon(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	echo := filepath.Join(t.TempDir(), "echo")
	if out, err := exec.Command("go", "build", "-o", echo, "../../sdk/examples/echo").CombinedOutput(); err != nil {
		t.Fatalf("build echo: %v\n%s", err, out)
	}
	cfg := writeConfig(t, fmt.Sprintf("data_dir: %s\nhttp: {addr: \"127.0.0.1:0\"}\nplugins:\n  echo: {path: %s}\n", t.TempDir(), echo))
	p := startDaemon(t, cfg)
	base := p.waitReady(t)
	var list struct {
		Plugins []struct {
			Name  string `json:"name"`
			State string `json:"state"`
			PID   int    `json:"pid"`
		} `json:"plugins"`
	}
	if err := getJSON(base+"/v1/plugins", &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Plugins) != 1 || list.Plugins[0].State != "running" || list.Plugins[0].PID == 0 {
		t.Fatalf("plugins %+v, want echo running with its pid", list.Plugins)
	}
	pid := list.Plugins[0].PID
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if !processAlive(pid) {
		t.Fatalf("plugin pid %d is not running", pid)
	}
	p.kill(t)
	poll.Until(t, 10*time.Second, func() error {
		if processAlive(pid) {
			return fmt.Errorf("plugin %d still running after kill -9 of wildcatd", pid)
		}
		return nil
	})
}

// processAlive reports whether pid is a running process; a zombie (exited,
// waiting to be reaped by whoever inherited it) is not.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b) // pid (comm) state …; comm may hold spaces and parentheses
	state := s[strings.LastIndexByte(s, ')')+2:]
	return !strings.HasPrefix(state, "Z") && !strings.HasPrefix(state, "X")
}
