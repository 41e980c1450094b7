package config

import "time"

// StageConfig is one entry of config.yaml's pipeline list. Package
// pipeline runs it (pipeline.StageConfig is this type) and checks it
// against the stage kinds a daemon offers; here it is only its shape.
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

// Match selects the events a stage sees. Empty fields match everything,
// except Sources for stages that can cause events: see pipeline.Matches.
type Match struct {
	// Kinds are event kinds or patterns: "message.received", "message.*", "*".
	Kinds    []string `koanf:"kinds" json:"kinds,omitempty"`
	Accounts []string `koanf:"accounts" json:"accounts,omitempty"`
	// Chat is user, group, broadcast or status.
	Chat     []string `koanf:"chat" json:"chat,omitempty"`
	FromMe   *bool    `koanf:"fromMe" json:"fromMe,omitempty"`
	Sources  []string `koanf:"sources" json:"sources,omitempty"`
	HasMedia *bool    `koanf:"hasMedia" json:"hasMedia,omitempty"`
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

// StageKind is what a stage is.
type StageKind string

const (
	KindRules   StageKind = "rules"
	KindPlugin  StageKind = "plugin"
	KindSink    StageKind = "sink"
	KindBuiltin StageKind = "builtin"
)

// Kind returns what the stage is, or "" when it does not say exactly once.
func (s *StageConfig) Kind() StageKind {
	var kinds []StageKind
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
