package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/dop251/goja"

	"github.com/wildcathub/wildcat/core/event"
)

// ErrTimeout is in the chain of a RuleError for a handler cut at its
// deadline.
var ErrTimeout = errors.New("rule handler exceeded its deadline")

// RuleError is a rule that failed: thrown, timed out, stack exhausted, or
// not loadable. File and Line point into the rule (the innermost frame of
// the rule's own file); Stack is the JS stack.
type RuleError struct {
	Rule    string
	File    string
	Line    int
	Column  int
	Timeout bool
	// Message is the thrown value (or what happened) without position.
	Message string
	Stack   string
	Err     error
}

func (e *RuleError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("rule %s: %s (%s:%d:%d)", e.Rule, e.Message, e.File, e.Line, e.Column)
	}
	return fmt.Sprintf("rule %s: %s (%s)", e.Rule, e.Message, e.File)
}

func (e *RuleError) Unwrap() error { return e.Err }

// version is one loaded content of a rule file, with its own pool of
// runtimes: a reload creates a new version, and calls that started on the
// old one finish there.
type version struct {
	eng      *Engine
	rule     *rule
	id       string
	prg      *goja.Program
	cfg      *ruleConfig
	patterns []string // what the first runtime's top level registered
	loadedAt time.Time
	pool     chan *vm
	// interrupt is the value runtimes are interrupted with.
	interrupt error
}

func (v *version) matches(k event.Kind) bool {
	for _, p := range v.patterns {
		if event.MatchKind(p, k) {
			return true
		}
	}
	return false
}

func (v *version) get() (*vm, error) {
	for {
		select {
		case m := <-v.pool:
			if m.stale() {
				m.close()
				continue
			}
			return m, nil
		default:
			return v.newVM()
		}
	}
}

func (v *version) put(m *vm) { v.putAt(m, time.Now()) }

// putAt returns m to the pool, idle since now.
func (v *version) putAt(m *vm, now time.Time) {
	if m.stale() {
		m.close()
		return
	}
	m.idleSince = now
	select {
	case v.pool <- m:
	default:
		m.close()
	}
}

// vm is one goja runtime with a rule version's top level run in it.
// A runtime is not goroutine-safe: a vm belongs to one call at a time.
type vm struct {
	rt       *goja.Runtime
	v        *version
	handlers []handler
	ctxObj   *goja.Object
	parse    goja.Callable // JSON.parse
	stringfy goja.Callable // JSON.stringify
	freeze   goja.Callable // deep freeze
	loading  bool          // running the top level: on() allowed
	call     *call         // the call in progress, nil between calls
	rangeErr goja.Constructor
	// Array.prototype[Symbol.iterator] (as installLimits left it),
	// %ArrayIteratorPrototype% and its next: when a list still iterates
	// with these, stringList reads it without goja's reflection.
	arrayIter      goja.Value
	arrayIterProto *goja.Object
	arrayIterNext  goja.Value
	// privateRx maps a regexp2 program this runtime's RegExp objects
	// matched with (shared or private) to the copy only this runtime holds
	// (boundRegexp).
	privateRx map[*regexp2.Regexp]*regexp2.Regexp
	// stack is the value stack lent to goja for each handler call (stack.go).
	stack []goja.Value
	// callState is what call points to during a Handle: one per runtime,
	// not one allocation per call.
	callState call
	// args are a handler call's arguments (msg, ctx), held here rather
	// than in a slice made per call.
	args [2]goja.Value
	// epoch is memEpoch when the runtime was made; a memory cut since
	// retires it (memwatch.go).
	epoch uint64
	// idleSince is when it last went back to the pool (trimIdle).
	idleSince time.Time

	// Deadline guard. The timer is reused across calls; a late fire from
	// an earlier call finds a deadline not yet passed and does nothing.
	mu       sync.Mutex
	running  bool
	deadline time.Time
	timer    *time.Timer
}

type handler struct {
	pattern string
	fn      goja.Callable
}

// call is the state of one Handle on one rule.
type call struct {
	parent   context.Context
	ev       *event.Event
	eff      Effects
	effects  []Effect
	dropped  bool
	deadline time.Time
	goCtx    context.Context
	cancel   context.CancelFunc
	// cutIn is set when a Go function (kv, fetch) ran out of the deadline:
	// the handler timed out even if it caught that error.
	cutIn *RuleError
	// returned is when the last handler returned: when the runtime went
	// idle.
	returned time.Time
	// firstEffects holds the first effects recorded (a rule asks for one
	// or two, e.g. tag and route); handle copies them out at the end, in
	// one allocation of their size.
	firstEffects [2]Effect
}

// context for Go functions called from JS (kv, fetch): Interrupt does not
// reach into Go code, so they carry the handler's deadline themselves.
func (c *call) context() context.Context {
	if c.goCtx == nil {
		c.goCtx, c.cancel = context.WithDeadline(c.parent, c.deadline)
	}
	return c.goCtx
}

func (c *call) endHandler() {
	if c.cancel != nil {
		c.cancel()
		c.goCtx, c.cancel = nil, nil
	}
}

const deepFreezeJS = `(function deepFreeze(o) {
	Object.freeze(o);
	for (const k of Object.keys(o)) {
		const v = o[k];
		if (v !== null && typeof v === "object" && !Object.isFrozen(v)) deepFreeze(v);
	}
	return o;
})`

// loadTimeout bounds a rule file's top level, which should only register
// handlers.
const loadTimeout = time.Second

func (v *version) newVM() (*vm, error) {
	rt := goja.New()
	rt.SetMaxCallStackSize(v.eng.opts.MaxCallStack)
	m := &vm{rt: rt, v: v, epoch: memEpoch.Load()}
	m.timer = time.AfterFunc(time.Hour, m.onDeadline)
	m.timer.Stop()
	if err := m.installLimits(); err != nil {
		return nil, fmt.Errorf("rules: prepare runtime: %w", err)
	}
	stackFields() // resolved here, once, rather than in a handler's deadline

	jsonObj := rt.Get("JSON").ToObject(rt)
	m.parse, _ = goja.AssertFunction(jsonObj.Get("parse"))
	m.stringfy, _ = goja.AssertFunction(jsonObj.Get("stringify"))
	fz, err := rt.RunString(deepFreezeJS)
	if err != nil {
		return nil, fmt.Errorf("rules: prepare runtime: %w", err)
	}
	m.freeze, _ = goja.AssertFunction(fz)
	if err := m.installGlobals(); err != nil {
		return nil, fmt.Errorf("rules: prepare runtime: %w", err)
	}

	m.loading = true
	m.arm(time.Now().Add(max(loadTimeout, v.cfg.timeout)))
	_, err = rt.RunProgram(v.prg)
	m.disarm()
	m.loading = false
	if err != nil {
		m.close()
		return nil, v.ruleError(err, "at top level")
	}
	return m, nil
}

func (m *vm) close() { m.timer.Stop() }

// trim discards the version's runtimes idle since before cutoff, keeping
// at least keep of them: a burst's runtimes go once it is over, and the
// next burst finds a few ready.
func (v *version) trim(keep int, cutoff time.Time) {
	var kept []*vm
	for done := false; !done; {
		select {
		case m := <-v.pool:
			if len(kept) < keep || m.idleSince.After(cutoff) {
				kept = append(kept, m)
			} else {
				m.close()
			}
		default:
			done = true
		}
	}
	for _, m := range kept {
		v.put(m)
	}
}

// stale reports a runtime made before the latest memory cut.
func (m *vm) stale() bool { return m.epoch < memEpoch.Load() }

func (m *vm) arm(deadline time.Time) { m.armIn(deadline, time.Until(deadline)) }

// armIn is arm for a deadline d from now (saving a reading of the clock).
func (m *vm) armIn(deadline time.Time, d time.Duration) {
	m.mu.Lock()
	m.running, m.deadline = true, deadline
	m.mu.Unlock()
	m.timer.Reset(d)
	if l := m.v.eng.opts.MemoryLimit; l > 0 {
		watchdog.add(m, l)
	}
}

// disarm ends the guard; after it no Interrupt can reach the runtime, so
// clearing a fired one leaves it clean for the next call.
func (m *vm) disarm() {
	m.mu.Lock()
	m.running = false
	m.mu.Unlock()
	m.timer.Stop()
	watchdog.remove(m)
	m.rt.ClearInterrupt()
}

func (m *vm) onDeadline() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running && !time.Now().Before(m.deadline) {
		m.rt.Interrupt(m.v.interrupt)
	}
}

// handle runs the handlers of this version that match ev. A runtime whose
// JS was cut mid-way (interrupt, stack overflow) is discarded rather than
// reused: the rule's globals may be half-updated, and a fresh runtime only
// costs one run of the top level, on a rare path.
//
// The caller checks the heap first (watchdog.beforeCall).
func (v *version) handle(ctx context.Context, ev *event.Event, eff Effects) ([]Effect, bool, error) {
	m, err := v.get()
	if err != nil {
		// The top level ran once at load; failing now means it depends on
		// something that changed (time, randomness).
		v.rule.stats.errors.Add(1)
		v.eng.log.Warn("rule runtime not created", slog.String("rule", v.rule.name), slog.String("file", v.rule.file), slog.Any("error", err))
		return nil, false, err
	}
	// The runtime's own call state, reset: m.call and everything read from
	// it are done with before m goes back to the pool, never after: the
	// next call may already own it.
	m.callState = call{parent: ctx, ev: ev, eff: eff}
	c := &m.callState
	m.call = c
	msg := m.message(ev)
	var callErr error
	for _, h := range m.handlers {
		if !event.MatchKind(h.pattern, ev.Kind) {
			continue
		}
		if callErr = m.invoke(c, h, msg); callErr != nil || c.dropped {
			break
		}
	}
	m.call = nil
	effects, dropped, returned := c.effects, c.dropped, c.returned
	if len(effects) > 0 && &effects[0] == &c.firstEffects[0] {
		effects = slices.Clone(effects)
	}
	m.callState = call{}
	if cut(callErr) {
		m.close()
	} else {
		if returned.IsZero() {
			returned = time.Now()
		}
		v.putAt(m, returned)
	}
	return effects, dropped, callErr
}

// cut reports whether err stopped JS mid-way (interrupt, stack overflow),
// as opposed to an exception the rule threw.
func cut(err error) bool {
	if err == nil {
		return false
	}
	var re *RuleError
	if errors.As(err, &re) {
		err = re.Err
	}
	return errors.As(err, new(*goja.InterruptedError)) || errors.As(err, new(*goja.StackOverflowError))
}

func (m *vm) invoke(c *call, h handler, msg goja.Value) error {
	v := m.v
	if err := c.parent.Err(); err != nil {
		return fmt.Errorf("rule %s: not called: %w", v.rule.name, err)
	}
	start := time.Now()
	c.deadline = start.Add(v.cfg.timeout)
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		c.deadline = d
	}
	c.cutIn = nil
	m.armIn(c.deadline, c.deadline.Sub(start))
	m.lendStack()
	m.args = [2]goja.Value{msg, m.ctxObj}
	_, err := h.fn(goja.Undefined(), m.args[:]...) // goja copies them to its stack
	m.args = [2]goja.Value{}
	returned := time.Now()
	m.reclaimStack()
	m.disarm()
	c.endHandler()
	c.returned = returned
	elapsed := returned.Sub(start)

	st := &v.rule.stats
	st.calls.Add(1)
	st.record(elapsed)
	var re *RuleError
	switch {
	case err != nil:
		re = v.ruleError(err, "in handler for "+h.pattern)
		if c.cutIn != nil && !re.Timeout {
			re.Timeout = true
			re.Err = fmt.Errorf("%w: %w", ErrTimeout, re.Err)
		}
	case c.cutIn != nil:
		re = c.cutIn
		re.Message = fmt.Sprintf("in handler for %s: exceeded its %s deadline in a kv or http call (the rule caught the error)", h.pattern, v.cfg.timeout)
		re.Err = ErrTimeout
	case !returned.Before(c.deadline):
		// The interrupt came while a built-in ran and the handler returned
		// before another instruction saw it; the call still overran.
		re = &RuleError{Rule: v.rule.name, File: v.rule.file, Timeout: true, Err: ErrTimeout,
			Message: fmt.Sprintf("in handler for %s: exceeded its %s deadline in a built-in call and returned %s late",
				h.pattern, v.cfg.timeout, returned.Sub(c.deadline).Round(time.Millisecond))}
	default:
		return nil
	}
	if re.Timeout {
		st.timeouts.Add(1)
		v.eng.log.Warn("rule handler timed out", slog.String("rule", v.rule.name), slog.String("file", re.File),
			slog.Int("line", re.Line), slog.Duration("deadline", v.cfg.timeout), slog.Duration("ran", elapsed),
			slog.String("event_id", c.ev.ID), slog.String("stack", re.Stack))
	} else if errors.Is(re, ErrMemoryLimit) {
		st.errors.Add(1)
		v.eng.log.Warn("rule handler cut at the memory limit", slog.String("rule", v.rule.name), slog.String("file", re.File),
			slog.Int("line", re.Line), slog.String("error", re.Message), slog.String("event_id", c.ev.ID),
			slog.Duration("ran", elapsed))
	} else {
		st.errors.Add(1)
		v.eng.log.Warn("rule handler failed", slog.String("rule", v.rule.name), slog.String("file", re.File),
			slog.Int("line", re.Line), slog.String("error", re.Message), slog.String("event_id", c.ev.ID),
			slog.String("stack", re.Stack))
	}
	return re
}

// ruleError turns what goja returned into a RuleError pointing at the
// innermost frame in the rule's own file.
func (v *version) ruleError(err error, where string) *RuleError {
	re := &RuleError{Rule: v.rule.name, File: v.rule.file, Err: err}
	var (
		ex       *goja.Exception
		intr     *goja.InterruptedError
		overflow *goja.StackOverflowError
		syntax   *goja.CompilerSyntaxError
	)
	switch {
	case errors.As(err, &intr) && errors.Is(err, ErrMemoryLimit):
		re.Message = fmt.Sprintf("%s: %v", where, intr.Value())
		re.Stack = stackString(intr.Stack())
		re.Line, re.Column = v.position(intr.Stack())
	case errors.As(err, &intr):
		re.Timeout = true
		re.Message = fmt.Sprintf("%s: exceeded its %s deadline", where, v.cfg.timeout)
		re.Stack = stackString(intr.Stack())
		re.Line, re.Column = v.position(intr.Stack())
	case errors.As(err, &overflow):
		re.Message = fmt.Sprintf("%s: call stack exceeded %d frames (runaway recursion?)", where, v.eng.opts.MaxCallStack)
		re.Stack = stackString(overflow.Stack())
		re.Line, re.Column = v.position(overflow.Stack())
	case errors.As(err, &ex):
		re.Message = where + ": " + exceptionMessage(ex)
		re.Stack = ex.String()
		re.Line, re.Column = v.position(ex.Stack())
		// A Go function (kv, fetch) that ran out of the deadline throws a
		// catchable error carrying ErrTimeout; it is a timeout all the same.
		if errors.Is(err, ErrTimeout) {
			re.Timeout = true
		}
	case errors.As(err, &syntax):
		re.Message = "SyntaxError: " + syntax.Message
		if syntax.File != nil {
			p := syntax.File.Position(syntax.Offset)
			re.Line, re.Column = p.Line, p.Column
		}
	default:
		re.Message = where + ": " + err.Error()
	}
	return re
}

func exceptionMessage(ex *goja.Exception) string {
	if val := ex.Value(); val != nil {
		return val.String()
	}
	return ex.Error()
}

func (v *version) position(stack []goja.StackFrame) (line, col int) {
	for _, f := range stack {
		if f.SrcName() == v.rule.file {
			p := f.Position()
			return p.Line, p.Column
		}
	}
	return 0, 0
}

func stackString(stack []goja.StackFrame) string {
	var b strings.Builder
	for _, f := range stack {
		b.WriteString("\tat ")
		p := f.Position()
		if fn := f.FuncName(); fn != "" {
			fmt.Fprintf(&b, "%s (%s:%d:%d)\n", fn, f.SrcName(), p.Line, p.Column)
		} else {
			fmt.Fprintf(&b, "%s:%d:%d\n", f.SrcName(), p.Line, p.Column)
		}
	}
	return b.String()
}
