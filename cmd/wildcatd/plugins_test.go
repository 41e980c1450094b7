package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
