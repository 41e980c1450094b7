package config

import (
	"path/filepath"
	"strings"
)

// GlobBase is the directory part of a rules glob before its first
// wildcard, cleaned: "scripts/*.js" → "scripts", "/srv/rules/**/a.js" →
// "/srv/rules".
func GlobBase(glob string) string {
	glob = filepath.Clean(glob)
	parts := strings.Split(glob, string(filepath.Separator))
	n := 0
	for n < len(parts) && !strings.ContainsAny(parts[n], `*?[\`) {
		n++
	}
	if n == len(parts) {
		n-- // no wildcard: the file's directory
	}
	base := strings.Join(parts[:n], string(filepath.Separator))
	if base == "" {
		if filepath.IsAbs(glob) {
			return string(filepath.Separator)
		}
		return "."
	}
	return base
}

// EffectiveRuleDirs are the directories rule files may come from when the
// pipeline is replaced over REST: rule_dirs, or else the directories of the
// rules globs of the configured pipeline.
func (c *Config) EffectiveRuleDirs() []string {
	if len(c.RuleDirs) > 0 {
		return c.RuleDirs
	}
	var dirs []string
	for _, s := range c.Pipeline {
		for _, g := range s.Rules {
			dirs = append(dirs, GlobBase(g))
		}
	}
	return dirs
}
