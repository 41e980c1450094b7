package pipeline

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/event"
)

// The shapes of config.yaml's pipeline list live in package config, which
// everything may import; these names keep the pipeline's API.
type (
	StageConfig = config.StageConfig
	Match       = config.Match
	Mode        = config.Mode
	OnError     = config.OnError
	Kind        = config.StageKind
)

const (
	ModeInline = config.ModeInline
	ModeSink   = config.ModeSink

	OnErrorSkip       = config.OnErrorSkip
	OnErrorRetry      = config.OnErrorRetry
	OnErrorDeadLetter = config.OnErrorDeadLetter

	KindRules   = config.KindRules
	KindPlugin  = config.KindPlugin
	KindSink    = config.KindSink
	KindBuiltin = config.KindBuiltin
)

// DefaultTimeout bounds a stage call when the config gives none.
const DefaultTimeout = 5 * time.Second

// MaxTimeout is the longest accepted stage timeout: a stage holds its chat
// for as long, so minutes mean a stuck chat.
const MaxTimeout = 5 * time.Minute

// stageTimeout is s.Timeout with its default applied.
func stageTimeout(s *StageConfig) time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

// Catalog answers which stage kinds exist; the Registry is one.
type Catalog interface {
	HasRules() bool
	HasBuiltin(name string) bool
	// Plugin reports whether a plugin is known and which modes it serves.
	Plugin(name string) (inline, sink, ok bool)
	HasSink(name string) bool
}

// StageError is a problem with one stage of the pipeline config.
type StageError struct {
	Index   int
	Name    string
	Problem string
}

func (e *StageError) Error() string {
	return fmt.Sprintf("pipeline[%d] %q: %s", e.Index, e.Name, e.Problem)
}

// Validate checks stages against cat and returns every problem found, each
// a *StageError naming its stage (errors.Join; errors.As finds the first).
// cat may be nil to check only what needs no registry.
func Validate(stages []StageConfig, cat Catalog) error {
	var errs []error
	seen := map[string]int{}
	for i := range stages {
		s := &stages[i]
		bad := func(format string, args ...any) {
			errs = append(errs, &StageError{Index: i, Name: s.Name, Problem: fmt.Sprintf(format, args...)})
		}
		if strings.TrimSpace(s.Name) == "" {
			bad("name must not be empty")
		} else if j, dup := seen[s.Name]; dup {
			bad("duplicate name (also pipeline[%d])", j)
		} else {
			seen[s.Name] = i
		}
		kind := s.Kind()
		if kind == "" {
			var set []string
			for _, k := range []struct {
				name string
				on   bool
			}{{"rules", len(s.Rules) > 0}, {"plugin", s.Plugin != ""}, {"sink", s.Sink != ""}, {"builtin", s.Builtin != ""}} {
				if k.on {
					set = append(set, k.name)
				}
			}
			if len(set) == 0 {
				bad("needs one of rules, plugin, sink or builtin")
			} else {
				bad("sets both %s; a stage is exactly one kind", strings.Join(set, " and "))
			}
		}
		mode := s.EffectiveMode()
		if mode != ModeInline && mode != ModeSink {
			bad("unknown mode %q (valid: inline, sink)", s.Mode)
		}
		switch kind {
		case KindRules:
			for _, g := range s.Rules {
				if _, err := filepath.Match(g, ""); err != nil || strings.TrimSpace(g) == "" {
					bad("bad rules glob %q", g)
				}
			}
			if mode == ModeSink {
				bad("rules run inline; mode sink is not possible")
			}
			if cat != nil && !cat.HasRules() {
				bad("rules are not available in this build")
			}
		case KindSink:
			if mode == ModeInline {
				bad("a sink is fed through the outbox; mode inline is not possible")
			}
			if cat != nil && !cat.HasSink(s.Sink) {
				bad("unknown sink %q", s.Sink)
			}
		case KindBuiltin:
			if mode == ModeSink {
				bad("builtin stages run inline; mode sink is not possible")
			}
			if cat != nil && !cat.HasBuiltin(s.Builtin) {
				bad("unknown builtin %q", s.Builtin)
			}
		case KindPlugin:
			if cat != nil {
				inline, sink, ok := cat.Plugin(s.Plugin)
				switch {
				case !ok:
					bad("unknown plugin %q", s.Plugin)
				case mode == ModeInline && !inline:
					bad("plugin %q has no inline handler; use mode: sink", s.Plugin)
				case mode == ModeSink && !sink:
					bad("plugin %q is not a sink; use mode: inline", s.Plugin)
				}
			}
		}
		if s.Timeout < 0 || s.Timeout > MaxTimeout {
			bad("timeout %s is not between 0 and %s", s.Timeout, MaxTimeout)
		}
		switch s.OnError {
		case "", OnErrorSkip, OnErrorRetry, OnErrorDeadLetter:
		default:
			bad("unknown onError %q (valid: skip, retry, deadletter)", s.OnError)
		}
		if err := ValidateMatch(&s.Match); err != nil {
			bad("match: %v", err)
		}
	}
	return errors.Join(errs...)
}

// ValidateMatch checks a Match's values; the error starts with the field's
// name ("kinds: …").
func ValidateMatch(m *Match) error {
	for _, k := range m.Kinds {
		if err := event.ValidateKindPattern(k); err != nil {
			return fmt.Errorf("kinds: %w", err)
		}
	}
	for _, a := range m.Accounts {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("accounts: empty account id")
		}
	}
	for _, c := range m.Chat {
		switch ChatKind(c) {
		case ChatUser, ChatGroup, ChatBroadcast, ChatStatus:
		default:
			return fmt.Errorf("chat: unknown chat kind %q (valid: user, group, broadcast, status)", c)
		}
	}
	for _, s := range m.Sources {
		if !event.Source(s).Valid() {
			return fmt.Errorf("sources: unknown source %q (valid: phone, api, rule, plugin, history)", s)
		}
	}
	return nil
}
