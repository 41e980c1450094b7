package pipeline

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

// StageConfig is one entry of config.yaml's pipeline list.
//
//	pipeline:
//	  - name: rules
//	    rules: ["scripts/*.js"]
//	  - name: archive
//	    plugin: mediaarchive
//	    mode: sink
//	    match: {kinds: [message.received], hasMedia: true}
//	  - name: vip
//	    builtin: tag
//	    config: {tag: vip}
//	    match: {accounts: [sales]}
//	  - name: webhooks
//	    sink: webhooks
//
// Exactly one of Rules, Plugin, Sink and Builtin says what the stage is.
type StageConfig struct {
	Name    string   `koanf:"name" json:"name"`
	Rules   []string `koanf:"rules" json:"rules,omitempty"`
	Plugin  string   `koanf:"plugin" json:"plugin,omitempty"`
	Sink    string   `koanf:"sink" json:"sink,omitempty"`
	Builtin string   `koanf:"builtin" json:"builtin,omitempty"`
	// Mode is inline (called in line, may return actions) or sink (fed
	// through the outbox). Empty means sink for sink stages, inline
	// otherwise.
	Mode  Mode  `koanf:"mode" json:"mode,omitempty"`
	Match Match `koanf:"match" json:"match"`
	// Timeout bounds one call of an inline stage, then the messages and
	// receipts its actions send, then storing its tags and annotations
	// (each on its own); 0 means 5 s.
	Timeout time.Duration `koanf:"timeout" json:"timeout,omitempty"`
	// OnError is what a failed or timed-out call, or a failed action,
	// leads to; empty means skip.
	OnError OnError `koanf:"onError" json:"onError,omitempty"`
	// Config is the kind-specific block: a plugin receives it as its
	// configuration, a builtin reads its options from it.
	Config map[string]any `koanf:"config" json:"config,omitempty"`
}

// Mode says how a stage is fed.
type Mode string

const (
	ModeInline Mode = "inline"
	ModeSink   Mode = "sink"
)

// OnError is a stage's failure policy.
type OnError string

const (
	// OnErrorSkip: log, count, and go on with the next stage (with the
	// effects of the stage's actions that did not fail).
	OnErrorSkip OnError = "skip"
	// OnErrorRetry: call the stage again a few times with backoff, or,
	// when the call succeeded but actions failed, try those actions again;
	// when every try failed, the event is dead-lettered at this stage.
	OnErrorRetry OnError = "retry"
	// OnErrorDeadLetter: record the event as a dead letter of this stage
	// (replayable) and stop processing it. A stage's actions that did not
	// fail have happened.
	OnErrorDeadLetter OnError = "deadletter"
)

// Kind is what a stage is.
type Kind string

const (
	KindRules   Kind = "rules"
	KindPlugin  Kind = "plugin"
	KindSink    Kind = "sink"
	KindBuiltin Kind = "builtin"
)

// DefaultTimeout bounds a stage call when the config gives none.
const DefaultTimeout = 5 * time.Second

// MaxTimeout is the longest accepted stage timeout: a stage holds its chat
// for as long, so minutes mean a stuck chat.
const MaxTimeout = 5 * time.Minute

// Kind returns what the stage is, or "" when it does not say exactly once.
func (s *StageConfig) Kind() Kind {
	var kinds []Kind
	if len(s.Rules) > 0 {
		kinds = append(kinds, KindRules)
	}
	if s.Plugin != "" {
		kinds = append(kinds, KindPlugin)
	}
	if s.Sink != "" {
		kinds = append(kinds, KindSink)
	}
	if s.Builtin != "" {
		kinds = append(kinds, KindBuiltin)
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// EffectiveMode is Mode with its default applied.
func (s *StageConfig) EffectiveMode() Mode {
	if s.Mode != "" {
		return s.Mode
	}
	if s.Kind() == KindSink {
		return ModeSink
	}
	return ModeInline
}

// Target is the outbox target a sink-mode stage enqueues for: the sink's or
// the plugin's name, so renaming a stage does not orphan its queued jobs.
func (s *StageConfig) Target() string {
	if s.Sink != "" {
		return s.Sink
	}
	return s.Plugin
}

func (s *StageConfig) timeout() time.Duration {
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
		if err := s.Match.validate(); err != nil {
			bad("match: %v", err)
		}
	}
	return errors.Join(errs...)
}

// Validate checks a Match's values; the error starts with the field's name
// ("kinds: …").
func (m *Match) Validate() error { return m.validate() }

// validate checks a Match's values.
func (m *Match) validate() error {
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
