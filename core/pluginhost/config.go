package pluginhost

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/bounded"
	"github.com/wildcathub/wildcat/core/config"
)

// Config declares one plugin: config.yaml's plugins.NAME block. Its shape
// lives in package config, which everything may import.
type Config = config.Plugin

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
	nameRE   = bounded.MustCompile(`^[a-z0-9][a-z0-9_-]*$`, 1, 63)
	sha256RE = bounded.MustCompile(`^[0-9a-fA-F]+$`, 64, 64)
)

// Validate checks one plugin's declaration; name is its key under plugins.
// Errors are *ConfigError naming plugins.NAME.field. Whether Path exists and
// is a plugin is checked at start.
func Validate(name string, c Config) error {
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
		if err := Validate(name, plugins[name]); err != nil {
			return err
		}
	}
	return nil
}

// SinkConcurrency is c.Concurrency with its default applied.
func SinkConcurrency(c Config) int {
	if c.Concurrency > 0 {
		return c.Concurrency
	}
	return DefaultConcurrency
}

func callTimeout(c Config) time.Duration {
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
