package pluginhost

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		key  string
	}{
		{"ok", Config{Path: "bin/plugins/ok"}, ""},
		{"Bad:Name", Config{Path: "x"}, "plugins.Bad:Name"},
		{"nopath", Config{}, "plugins.nopath.path"},
		{"neg", Config{Path: "x", Timeout: -time.Second}, "plugins.neg.timeout"},
		{"sum", Config{Path: "x", SHA256: "abc"}, "plugins.sum.sha256"},
		{"busy", Config{Path: "x", Concurrency: MaxConcurrency + 1}, "plugins.busy.concurrency"},
		{"idle", Config{Path: "x", Concurrency: -1}, "plugins.idle.concurrency"},
	}
	for _, tt := range tests {
		err := Validate(tt.name, tt.cfg)
		var ce *ConfigError
		switch {
		case tt.key == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.key != "" && (!errors.As(err, &ce) || ce.Key != tt.key || !strings.HasPrefix(err.Error(), tt.key+": ")):
			t.Errorf("%s: got %v, want key %s", tt.name, err, tt.key)
		}
	}
	if c := SinkConcurrency(Config{}); c != DefaultConcurrency {
		t.Errorf("default concurrency %d", c)
	}
	if c := SinkConcurrency(Config{Concurrency: 9}); c != 9 {
		t.Errorf("concurrency %d", c)
	}
	if _, err := New(Options{Plugins: map[string]Config{"a": {Path: "x"}, "b": {}}}); err == nil || !strings.Contains(err.Error(), "plugins.b.path") {
		t.Errorf("New: %v", err)
	}
}
