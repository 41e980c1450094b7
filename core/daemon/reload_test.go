package daemon_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/poll"
)

func stageNames(t *testing.T, c *client) []string {
	t.Helper()
	var s pipeline.Snapshot
	if err := json.Unmarshal(c.must(c.get("/v1/pipeline"), 200).body, &s); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range s.Stages {
		names = append(names, st.Name)
	}
	return names
}

// TestPipelineFollowsConfigFile: editing config.yaml's pipeline reloads it
// without a restart; a broken file changes nothing and is reported, also
// by POST /v1/pipeline/reload without a body, which re-reads the file.
func TestPipelineFollowsConfigFile(t *testing.T) {
	old := daemon.ConfigWatchInterval
	daemon.ConfigWatchInterval = 20 * time.Millisecond
	t.Cleanup(func() { daemon.ConfigWatchInterval = old })

	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	base := fmt.Sprintf("data_dir: %s\nhttp: {addr: \"127.0.0.1:0\"}\n", filepath.Join(dir, "data"))
	write := func(pipelineYAML string) {
		t.Helper()
		// Written aside and renamed, as editors do: the watcher never reads
		// half a file.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(base+pipelineYAML), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("pipeline:\n  - {name: first, builtin: log}\n")
	load := func() (config.Config, error) {
		l, err := config.Load(config.Source{Path: path})
		if err != nil {
			return config.Config{}, err
		}
		return l.Config, nil
	}
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	_, c := accountsDaemonWith(t, cfg, time.Millisecond, nil, func(o *daemon.Options) {
		o.ConfigFile, o.LoadConfig = path, load
	})
	if got := stageNames(t, c); !slices.Equal(got, []string{"first"}) {
		t.Fatalf("stages %v", got)
	}

	write("pipeline:\n  - {name: first, builtin: log}\n  - {name: vip, builtin: tag, config: {tag: vip}}\n")
	poll.Until(t, 10*time.Second, func() error {
		if got := stageNames(t, c); !slices.Equal(got, []string{"first", "vip"}) {
			return fmt.Errorf("stages %v after the edit", got)
		}
		return nil
	})
	c.connectSim("cfg")
	id := c.inject("cfg", `{"from":"+15550004444","id":"C01","text":"after the edit"}`)
	poll.Until(t, 10*time.Second, func() error {
		if m := c.message("cfg", id); !slices.Equal(m.Tags, []string{"vip"}) {
			return fmt.Errorf("tags %v", m.Tags)
		}
		return nil
	})

	// A stage naming a builtin that does not exist: nothing changes.
	write("pipeline:\n  - {name: broken, builtin: nope}\n")
	r := c.post("/v1/pipeline/reload", "")
	checkProblem(t, r, 422, `pipeline[0] "broken"`)
	if got := stageNames(t, c); !slices.Equal(got, []string{"first", "vip"}) {
		t.Fatalf("stages %v after a broken file", got)
	}
	// A file that is not even valid YAML.
	write("pipeline: [\n")
	checkProblem(t, c.post("/v1/pipeline/reload", ""), 422, path)

	write("pipeline: []\n")
	c.must(c.post("/v1/pipeline/reload", ""), 200)
	if got := stageNames(t, c); len(got) != 0 {
		t.Fatalf("stages %v, want none", got)
	}
}

// TestReloadWithoutConfigSource: a daemon embedded without a configuration
// source needs the stages in the body.
func TestReloadWithoutConfigSource(t *testing.T) {
	_, c := accountsDaemon(t, accountsConfig(t), time.Millisecond, nil)
	checkProblem(t, c.post("/v1/pipeline/reload", ""), 400, "stages")
}
