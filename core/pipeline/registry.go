package pipeline

import (
	"context"
	"fmt"
	"sync"

	"github.com/wildcathub/wildcat/core/event"
)

// InlineHandler is an inline stage: it sees each matching event in its
// chat's order and returns actions. It must honour ctx (the stage's
// deadline) and may be called concurrently for events of different chats.
// ev is the handler's own copy.
type InlineHandler interface {
	Handle(ctx context.Context, ev *event.Event) ([]Action, error)
}

// HandlerFunc adapts a function to InlineHandler.
type HandlerFunc func(ctx context.Context, ev *event.Event) ([]Action, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, ev *event.Event) ([]Action, error) {
	return f(ctx, ev)
}

// Factory builds the handler of one configured stage. It is called on
// every (re)load, with the stage's config (its Config block holds the
// kind-specific options).
type Factory func(st StageConfig) (InlineHandler, error)

// Registry holds the stage kinds this daemon knows: builtins (registered
// by NewRegistry), and what later components add — the rule engine, the
// plugins reported by the plugin host, the sinks the outbox delivers to.
// It is the Catalog that Validate checks names against.
type Registry struct {
	mu       sync.RWMutex
	rules    Factory
	builtins map[string]Factory
	plugins  map[string]pluginKind
	sinks    map[string]bool
	fanouts  map[string]Fanout
}

// Fanout maps an event to the outbox targets a sink stage delivers it to:
// the webhook registry turns "sink: webhooks" into one target per matching
// endpoint ("webhook:<id>"). It is called for every event the stage sees,
// so it must be fast and safe for concurrent use; no targets means the
// event goes nowhere from this stage.
type Fanout func(ev *event.Event) []string

type pluginKind struct {
	inline Factory // nil: not an inline handler
	sink   bool
}

// NewRegistry returns a registry with the builtin kinds.
func NewRegistry() *Registry {
	r := &Registry{builtins: map[string]Factory{}, plugins: map[string]pluginKind{}, sinks: map[string]bool{}, fanouts: map[string]Fanout{}}
	registerBuiltins(r)
	return r
}

// RegisterRules installs the rule engine's factory (stages with rules:).
func (r *Registry) RegisterRules(f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules = f
}

// RegisterBuiltin adds a builtin kind (stages with builtin: name).
func (r *Registry) RegisterBuiltin(name string, f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.builtins[name] = f
}

// RegisterPlugin adds a plugin: inline is its handler factory (nil if it
// has none), sink whether it can be fed through the outbox (the caller also
// registers an outbox sink under the plugin's name).
func (r *Registry) RegisterPlugin(name string, inline Factory, sink bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plugins[name] = pluginKind{inline: inline, sink: sink}
}

// RegisterSink adds a sink target (stages with sink: name); its deliveries
// are the outbox dispatcher's business.
func (r *Registry) RegisterSink(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sinks[name] = true
}

// RegisterFanout adds a sink name (stages with sink: name) whose events are
// enqueued for the targets f returns instead of for name itself.
func (r *Registry) RegisterFanout(name string, f Fanout) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sinks[name] = true
	r.fanouts[name] = f
}

func (r *Registry) isFanout(target string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.fanouts[target] != nil
}

// targets are the outbox targets of a sink stage's target for ev.
func (r *Registry) targets(target string, ev *event.Event) []string {
	r.mu.RLock()
	f := r.fanouts[target]
	r.mu.RUnlock()
	if f == nil {
		return []string{target}
	}
	return f(ev)
}

// HasRules implements Catalog.
func (r *Registry) HasRules() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.rules != nil
}

// HasBuiltin implements Catalog.
func (r *Registry) HasBuiltin(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.builtins[name] != nil
}

// Plugin implements Catalog.
func (r *Registry) Plugin(name string) (inline, sink, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.plugins[name]
	return p.inline != nil, p.sink, ok
}

// HasSink implements Catalog.
func (r *Registry) HasSink(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.sinks[name]
}

// build returns the inline handler of a validated inline stage.
func (r *Registry) build(st StageConfig) (InlineHandler, error) {
	r.mu.RLock()
	var f Factory
	switch st.Kind() {
	case KindRules:
		f = r.rules
	case KindBuiltin:
		f = r.builtins[st.Builtin]
	case KindPlugin:
		f = r.plugins[st.Plugin].inline
	}
	r.mu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("no inline handler for %s stage", st.Kind())
	}
	h, err := f(st)
	if err != nil {
		return nil, err
	}
	return h, nil
}
