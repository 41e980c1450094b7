// Package rules runs the JavaScript rules admins write: plain .js files that
// register handlers with on("message.received", (msg, ctx) => …), run by
// goja on pools of runtimes, each handler call under a deadline.
//
// The engine knows nothing of the pipeline: a call gets an Effects that the
// ctx functions call (reply, send, react, markRead, drop, tag, annotate,
// route), and Handle returns the same requests recorded as []Effect. kv,
// log, time, config and http.fetch are the engine's own.
package rules

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/netguard"
)

// DefaultTimeout is a handler call's deadline unless the rule's config
// block sets timeout.
const DefaultTimeout = 50 * time.Millisecond

// DefaultMaxCallStack bounds JS call depth; runaway recursion throws a
// RangeError-like uncatchable error instead of eating memory.
const DefaultMaxCallStack = 1000

// MaxMediaBytes bounds media a rule sends by data or URL.
const MaxMediaBytes = 16 << 20

// MediaResolver loads media stored by the daemon (ctx.reply({media:
// {mediaId}})).
type MediaResolver interface {
	ResolveMedia(ctx context.Context, mediaID string) (data []byte, mimetype string, err error)
}

// Options configure an Engine.
type Options struct {
	// Globs name the rule files (filepath.Glob patterns, e.g. "scripts/*.js").
	Globs []string
	// Config is each rule's config block, keyed by rule name: the file's
	// base name without .js ("20-business-hours"). It is the rule's
	// ctx.config; the engine reads timeout, timezone and http from it.
	Config map[string]map[string]any
	// KV backs ctx.kv; nil keeps it in memory (nothing persists).
	KV KV
	// Media resolves media ids for replies; nil refuses them (outside dry runs).
	Media MediaResolver
	// Self returns an account's own JIDs (phone-number and LID forms) for
	// ctx.self(), e.g. to see whether a group message mentions us; nil
	// means unknown (an empty list).
	Self func(accountID string) []string
	// Group returns a group the account is in, for ctx.group(); nil:
	// ctx.group() throws (no access to groups).
	Group func(ctx context.Context, accountID, groupJID string) (*event.GroupInfo, error)
	// FetchResolver looks up the hosts of ctx.http.fetch for the SSRF
	// guard; nil: the system's resolver.
	FetchResolver netguard.Resolver
	// DryRun is `rules test`: http.fetch throws, media named by URL or id is
	// recorded, not loaded.
	DryRun bool
	// Now is the clock of ctx.time and kv expiry; nil means time.Now.
	Now func() time.Time
	// Timeout is the default deadline of a handler call; 0 means 50 ms.
	Timeout time.Duration
	// MaxCallStack bounds JS call depth; 0 means DefaultMaxCallStack.
	MaxCallStack int
	// IdleRuntimes is how many idle runtimes each rule keeps at most; 0
	// means DefaultIdleRuntimes. More calls in parallel create more,
	// dropped on return. Runtimes idle for IdleTimeout are discarded down
	// to 2×GOMAXPROCS (by Watch).
	IdleRuntimes int
	// MemoryLimit is the daemon heap size, in bytes, above which running
	// rule calls are cut and idle runtimes discarded (memwatch.go); 0
	// means DefaultMemoryLimit, negative turns the watchdog off.
	MemoryLimit int64
	// Logger gets the engine's and the rules' logs; nil discards.
	Logger *slog.Logger
}

// Engine loads rule files and runs their handlers. It is safe for
// concurrent use; Reload and Watch replace rules while calls are running,
// each call finishing on the version it started with.
type Engine struct {
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	kv    KV
	fetch *fetcher

	set atomic.Pointer[ruleSet] // what Handle runs

	mu    sync.Mutex       // serialises Reload; guards rules
	rules map[string]*rule // by file path
}

// ruleSet is an immutable snapshot: the active version of every rule that
// has one, in file-name order.
type ruleSet struct {
	versions []*version
}

// New returns an engine with no rules loaded; call Reload (and Watch).
func New(opts Options) *Engine {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxCallStack <= 0 {
		opts.MaxCallStack = DefaultMaxCallStack
	}
	if opts.IdleRuntimes <= 0 {
		opts.IdleRuntimes = DefaultIdleRuntimes()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MemoryLimit == 0 {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{opts: opts, log: log, now: opts.Now, kv: opts.KV, fetch: newFetcher(opts.FetchResolver), rules: map[string]*rule{}}
	if e.kv == nil {
		e.kv = NewMemoryKV(opts.Now)
	}
	e.set.Store(&ruleSet{})
	return e
}

// Handle runs every handler matching ev.Kind of every rule, rules in file
// name order and handlers in registration order. Effects are passed to eff
// (may be nil) as the rules ask for them and returned recorded. After a
// drop, no further handler runs. A handler that throws or times out ends
// its rule's part of this call; the other rules still run, and the errors
// are returned joined (each a *RuleError). Handle reads ev while it runs
// (rules see it as msg); the caller must not modify it meanwhile.
func (e *Engine) Handle(ctx context.Context, ev *event.Event, eff Effects) ([]Effect, error) {
	return e.HandleObserved(ctx, ev, eff, nil)
}

// RuleRun is one rule's part of a Handle call, for the pipeline's trace.
type RuleRun struct {
	Rule, File string
	Duration   time.Duration
	// Effects is how many effects the rule asked for.
	Effects int
	// Err is the rule's failure, if it failed.
	Err *RuleError
}

// HandleObserved is Handle that also reports each rule that ran to observe
// (on the calling goroutine, after the rule), when observe is not nil.
func (e *Engine) HandleObserved(ctx context.Context, ev *event.Event, eff Effects, observe func(RuleRun)) ([]Effect, error) {
	set := e.set.Load()
	var (
		out     []Effect
		errs    []error
		checked bool
	)
	for _, v := range set.versions {
		if !v.matches(ev.Kind) {
			continue
		}
		if !checked {
			// Once per event, before its first rule: the heap rules keep
			// between calls too short for the watchdog's sampling to see.
			watchdog.beforeCall(e)
			checked = true
		}
		var start time.Time
		if observe != nil {
			start = time.Now()
		}
		effects, dropped, err := v.handle(ctx, ev, eff)
		if observe != nil {
			run := RuleRun{Rule: v.rule.name, File: v.rule.file, Duration: time.Since(start), Effects: len(effects)}
			if err != nil && !errors.As(err, &run.Err) {
				run.Err = &RuleError{Rule: v.rule.name, File: v.rule.file, Message: err.Error(), Err: err}
			}
			observe(run)
		}
		if out == nil {
			out = effects // the call's own slice, nobody else's now
		} else {
			out = append(out, effects...)
		}
		if err != nil {
			errs = append(errs, err)
		}
		if dropped {
			break
		}
	}
	switch len(errs) {
	case 0:
		return out, nil
	case 1:
		return out, errs[0]
	}
	return out, errors.Join(errs...)
}

// RuleStatus is one rule as GET /v1/rules shows it.
type RuleStatus struct {
	// Stage is the pipeline stage running the rule (set by the daemon;
	// Engine.Status leaves it empty).
	Stage string `json:"stage,omitempty"`
	Name  string `json:"name"`
	File  string `json:"file"`
	// Version is the first 12 hex digits of the SHA-256 of the running
	// source; empty when no version ever loaded.
	Version  string    `json:"version,omitempty"`
	LoadedAt time.Time `json:"loadedAt,omitzero"`
	// LoadError is why the file on disk is not running (syntax error, a
	// throw at top level, bad config); the previous version, if any, runs.
	LoadError string        `json:"loadError,omitempty"`
	Kinds     []string      `json:"kinds,omitempty"`
	Calls     int64         `json:"calls"`
	Errors    int64         `json:"errors"`
	Timeouts  int64         `json:"timeouts"`
	P99       time.Duration `json:"p99Ns"`
}

// Status lists the rules by name.
func (e *Engine) Status() []RuleStatus {
	e.mu.Lock()
	rules := make([]*rule, 0, len(e.rules))
	for _, r := range e.rules {
		rules = append(rules, r)
	}
	e.mu.Unlock()
	sortRules(rules)
	out := make([]RuleStatus, 0, len(rules))
	for _, r := range rules {
		st := RuleStatus{Name: r.name, File: r.file}
		r.mu.Lock()
		if r.current != nil {
			st.Version, st.LoadedAt, st.Kinds = r.current.id, r.current.loadedAt, slices.Clone(r.current.patterns)
		}
		if r.loadErr != nil {
			st.LoadError = r.loadErr.Error()
		}
		r.mu.Unlock()
		st.Calls, st.Errors, st.Timeouts = r.stats.calls.Load(), r.stats.errors.Load(), r.stats.timeouts.Load()
		st.P99 = r.stats.p99()
		out = append(out, st)
	}
	return out
}

// rule is one rule file across its versions.
type rule struct {
	name  string // base name without .js: the kv namespace and config key
	file  string
	stats ruleStats

	mu      sync.Mutex
	current *version
	loadErr error
	// failedID is the content loadErr came from, so an unchanged broken
	// file is not compiled and logged again on every reload.
	failedID string
}

func sortRules(rs []*rule) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].name != rs[j].name {
			return rs[i].name < rs[j].name
		}
		return rs[i].file < rs[j].file
	})
}

// ruleStats are counters and a window of recent latencies.
type ruleStats struct {
	calls, errors, timeouts atomic.Int64

	mu     sync.Mutex
	recent [1024]time.Duration
	n      int // calls recorded, the ring's write position is n % len
}

func (s *ruleStats) record(d time.Duration) {
	s.mu.Lock()
	s.recent[s.n%len(s.recent)] = d
	s.n++
	s.mu.Unlock()
}

// p99 of the last 1024 calls.
func (s *ruleStats) p99() time.Duration {
	s.mu.Lock()
	n := min(s.n, len(s.recent))
	window := slices.Clone(s.recent[:n])
	s.mu.Unlock()
	if n == 0 {
		return 0
	}
	slices.Sort(window)
	return window[(n*99+99)/100-1]
}

// DefaultIdleRuntimes is as many runtimes as the pipeline runs calls at
// once (its default workers): a rule call that waits on kv holds its
// runtime, and a pool smaller than the calls in flight made a new runtime
// — a fifth of the CPU of a busy daemon — for most events.
func DefaultIdleRuntimes() int { return max(64, 4*runtime.GOMAXPROCS(0)) }

// IdleTimeout is how long a runtime beyond the first 2×GOMAXPROCS of a
// rule may stay idle before it is discarded.
const IdleTimeout = time.Minute

// trimIdle discards runtimes idle for IdleTimeout (see Options.IdleRuntimes).
func (e *Engine) trimIdle(now time.Time) {
	set := e.set.Load()
	if set == nil {
		return
	}
	for _, v := range set.versions {
		v.trim(2*runtime.GOMAXPROCS(0), now.Add(-IdleTimeout))
	}
}
