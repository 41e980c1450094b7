package pluginhost

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Config declares one plugin: config.yaml's plugins.NAME block.
//
//	plugins:
//	  echo:
//	    path: bin/plugins/echo
//	    args: ["--verbose"]
//	    timeout: 5s
//	    concurrency: 4
//	    config: {greeting: hello}
type Config struct {
	// Path of the plugin executable, absolute or relative to the daemon's
	// working directory.
	Path string `koanf:"path" json:"path"`
	// Args are passed to the executable.
	Args []string `koanf:"args" json:"args,omitempty"`
	// Config is handed to the plugin's Configure at every process start.
	Config map[string]any `koanf:"config" json:"config,omitempty"`
	// Timeout is the deadline of one Handle or Deliver call when the caller
	// set none earlier; zero means DefaultTimeout.
	Timeout time.Duration `koanf:"timeout" json:"timeout,omitempty"`
	// Concurrency is how many sink deliveries to the plugin may be in flight
	// at once; zero means DefaultConcurrency.
	Concurrency int `koanf:"concurrency" json:"concurrency,omitempty"`
	// SHA256, when set, is the hex SHA-256 the executable must have;
	// go-plugin refuses to start a binary that does not match.
	SHA256 string `koanf:"sha256" json:"sha256,omitempty"`
}

// DefaultTimeout is the per-call deadline when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// DefaultConcurrency is the sink deliveries in flight when
// Config.Concurrency is zero; MaxConcurrency is the most accepted.
const (
	DefaultConcurrency = 4
	MaxConcurrency     = 256
)

// ConfigError names the config key that is wrong, as in
// "plugins.echo.path: must not be empty".
type ConfigError struct {
	Key     string
	Problem string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Problem }

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	sha256RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// Validate checks one plugin's declaration; name is its key under plugins.
// Errors are *ConfigError naming plugins.NAME.field. Whether Path exists and
// is a plugin is checked at start.
func (c Config) Validate(name string) error {
	key := "plugins." + name
	if !nameRE.MatchString(name) {
		return &ConfigError{Key: key, Problem: "plugin names are 1-63 characters of a-z, 0-9, _ and -, starting with a letter or digit"}
	}
	if strings.TrimSpace(c.Path) == "" {
		return &ConfigError{Key: key + ".path", Problem: "must not be empty (the plugin executable, e.g. bin/plugins/" + name + ")"}
	}
	if c.Timeout < 0 {
		return &ConfigError{Key: key + ".timeout", Problem: "must not be negative"}
	}
	if c.Concurrency < 0 || c.Concurrency > MaxConcurrency {
		return &ConfigError{Key: key + ".concurrency", Problem: fmt.Sprintf("must be from 0 (the default, %d) to %d", DefaultConcurrency, MaxConcurrency)}
	}
	if c.SHA256 != "" && !sha256RE.MatchString(c.SHA256) {
		return &ConfigError{Key: key + ".sha256", Problem: "must be 64 hex digits"}
	}
	return nil
}

// ValidateAll validates every declaration, in name order, and returns the
// first problem.
func ValidateAll(plugins map[string]Config) error {
	for _, name := range sortedKeys(plugins) {
		if err := plugins[name].Validate(name); err != nil {
			return err
		}
	}
	return nil
}

// SinkConcurrency is Concurrency with its default applied.
func (c Config) SinkConcurrency() int {
	if c.Concurrency > 0 {
		return c.Concurrency
	}
	return DefaultConcurrency
}

func (c Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
