package rules

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dop251/goja"
)

// TestDeadlineInterruptsAnInfiniteLoop: the handler is cut, counted and
// reported with its line; the rule's next call runs normally. The overrun
// past the deadline is logged, not asserted (shared CI cores).
func TestDeadlineInterruptsAnInfiniteLoop(t *testing.T) {
	logs := &logBuffer{}
	e, _ := newEngine(t, map[string]string{"loop.js": `
on("message.received", (msg, ctx) => {
  let spins = 0;
  if (msg.message.text === "loop") {
    while (true) { spins++; }
  }
  ctx.tag("ok");
});`}, Options{Logger: logs.logger(), Config: map[string]map[string]any{"loop": {"timeout": "30ms"}}})

	start := time.Now()
	effs, err := handle(t, e, msgEvent("loop"))
	took := time.Since(start)
	t.Logf("30ms deadline: the loop was cut after %s (overrun %s)", took, took-30*time.Millisecond)
	var re *RuleError
	if !errors.As(err, &re) || !re.Timeout || !errors.Is(err, ErrTimeout) {
		t.Fatalf("want a timeout RuleError, got %v", err)
	}
	// (goja attributes an empty loop body to the nearest instruction
	// before it with a position; this loop has a body.)
	if re.Line != 5 || !strings.HasSuffix(re.File, "loop.js") || !strings.Contains(err.Error(), "loop.js:5") {
		t.Fatalf("timeout position %s:%d (%v)", re.File, re.Line, err)
	}
	if len(effs) != 0 {
		t.Fatalf("effects of a cut call: %v", effs)
	}
	if got := effectsJSON(t, mustHandle(t, e, msgEvent("next"))); got != `[{"kind":"tag","tags":["ok"]}]` {
		t.Fatalf("the call after the timeout: %s", got)
	}
	st := e.Status()[0]
	if st.Calls != 2 || st.Timeouts != 1 || st.Errors != 0 || st.P99 < 30*time.Millisecond {
		t.Fatalf("status %+v", st)
	}
	if recs := logs.records("rule handler timed out"); len(recs) != 1 || recs[0]["line"].(float64) != 5 || recs[0]["rule"] != "loop" {
		t.Fatalf("timeout log: %v", recs)
	}
}

// TestIdleRuntimesAreKeptThenTrimmed: runtimes made for calls in parallel
// go back to the pool (up to IdleRuntimes) instead of being made anew for
// the next calls; once idle for IdleTimeout they are discarded down to a
// floor, and a recently used one stays.
func TestIdleRuntimesAreKeptThenTrimmed(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"a.js": `on("message.received", (msg, ctx) => ctx.tag("t"))`}, Options{})
	v := e.set.Load().versions[0]
	const parallel = 40 // more than 2×GOMAXPROCS here, fewer than the default pool
	held := make([]*vm, parallel)
	for i := range held {
		m, err := v.get()
		if err != nil {
			t.Fatal(err)
		}
		held[i] = m
	}
	for _, m := range held {
		v.put(m)
	}
	if got := len(v.pool); got != parallel {
		t.Fatalf("%d idle runtimes after %d parallel calls, want all %d kept", got, parallel, parallel)
	}
	// They have been idle for two minutes.
	for range parallel {
		r := <-v.pool
		r.idleSince = r.idleSince.Add(-2 * IdleTimeout)
		v.pool <- r
	}
	m, _ := v.get()
	if m != held[0] {
		t.Fatal("the next call made a runtime instead of taking an idle one")
	}
	v.put(m) // used just now

	e.trimIdle(time.Now())
	floor := 2 * runtime.GOMAXPROCS(0)
	if got := len(v.pool); got != floor+1 {
		t.Fatalf("%d idle runtimes after the trim, want the floor of %d plus the one used last", got, floor)
	}
	found := false
	for range len(v.pool) {
		r := <-v.pool
		found = found || r == m
	}
	if !found {
		t.Fatal("the trim discarded the runtime used last")
	}
}

// A deadline timer that fires late — after its call ended, or during the
// next call on the same runtime — must not interrupt that next call.
func TestStaleDeadlineDoesNotInterruptTheNextCall(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"a.js": `on("message.received", (msg, ctx) => ctx.tag("t"))`}, Options{IdleRuntimes: 1})
	v := e.set.Load().versions[0]
	m, err := v.get()
	if err != nil {
		t.Fatal(err)
	}
	// Fired after the call ended: the guard is disarmed.
	m.arm(time.Now().Add(-time.Millisecond))
	m.disarm()
	m.onDeadline()
	if _, err := m.rt.RunString("1 + 1"); err != nil {
		t.Fatalf("interrupted by a fire after its call: %v", err)
	}
	// Fired during a later call whose own deadline has not come.
	m.arm(time.Now().Add(time.Hour))
	m.onDeadline()
	_, err = m.rt.RunString("1 + 1")
	m.disarm()
	if err != nil {
		t.Fatalf("interrupted by an earlier call's deadline: %v", err)
	}
	v.put(m)
	if got := effectsJSON(t, mustHandle(t, e, msgEvent("x"))); got != `[{"kind":"tag","tags":["t"]}]` {
		t.Fatalf("call after stale deadlines: %s", got)
	}
}

// The rule's own timeout is 10 s, the caller's deadline 20 ms: both end in
// ErrTimeout, so only the time the call took tells which one cut it. The
// rule's deadline cannot fire before 10 s, so returning any earlier proves
// the caller's deadline was honoured (no threshold on how fast that is).
func TestCallerDeadlineShortensTheRuleDeadline(t *testing.T) {
	const ruleTimeout = 10 * time.Second
	e, _ := newEngine(t, map[string]string{"a.js": `on("message.received", () => { while (true) {} })`}, Options{Timeout: ruleTimeout})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.Handle(ctx, msgEvent("x"), nil)
	took := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("want timeout, got %v", err)
	}
	if took >= ruleTimeout {
		t.Fatalf("the call ran %s: cut by the rule's %s timeout, not the caller's 20ms deadline", took, ruleTimeout)
	}
	t.Logf("cut by the caller's 20ms deadline after %s", took)
}

func TestRecursionLimit(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"rec.js": `
function down(n) { return down(n + 1) + 1; }
on("message.received", (msg, ctx) => {
  if (msg.message.text === "recurse") {
    try { down(0); } catch (e) { ctx.tag("caught"); }   // cannot be caught
  }
  ctx.tag("ok");
});`}, Options{MaxCallStack: 200})
	effs, err := handle(t, e, msgEvent("recurse"))
	var re *RuleError
	if !errors.As(err, &re) || re.Timeout || !strings.Contains(err.Error(), "call stack exceeded 200 frames") || re.Line != 2 {
		t.Fatalf("want a stack overflow at rec.js:2, got %v (line %d)", err, lineOf(re))
	}
	if !errors.As(err, new(*goja.StackOverflowError)) {
		t.Fatalf("goja's error is not in the chain: %v", err)
	}
	if len(effs) != 0 {
		t.Fatalf("effects: %v", effs)
	}
	if got := effectsJSON(t, mustHandle(t, e, msgEvent("next"))); got != `[{"kind":"tag","tags":["ok"]}]` {
		t.Fatalf("next call: %s", got)
	}
	if st := e.Status()[0]; st.Errors != 1 {
		t.Fatalf("status %+v", st)
	}
}

func lineOf(re *RuleError) int {
	if re == nil {
		return -1
	}
	return re.Line
}

func TestThrowIsReportedWithFileLineAndStack(t *testing.T) {
	logs := &logBuffer{}
	e, _ := newEngine(t, map[string]string{
		"10-bad.js": `function parse(text) {
  return JSON.parse(text).amount;
}
on("message.received", (msg, ctx) => {
  ctx.tag("before");
  if (parse(msg.message.text) > 10) ctx.tag("big");
  throw new Error("boom");
});`,
		"20-good.js": `on("message.received", (msg, ctx) => ctx.tag("good"))`,
	}, Options{Logger: logs.logger()})

	effs, err := handle(t, e, msgEvent("not json"))
	var re *RuleError
	if !errors.As(err, &re) || re.Timeout || re.Rule != "10-bad" || re.Line != 2 {
		t.Fatalf("want SyntaxError at 10-bad.js:2, got %v (line %d)", err, lineOf(re))
	}
	if !strings.Contains(re.Message, "SyntaxError") || !strings.Contains(re.Stack, "10-bad.js:6") {
		t.Fatalf("message %q, stack %q", re.Message, re.Stack)
	}
	// The effect made before the throw stays; the other rule still ran.
	if got := effectsJSON(t, effs); got != `[{"kind":"tag","tags":["before"]},{"kind":"tag","tags":["good"]}]` {
		t.Fatalf("effects %s", got)
	}

	_, err = handle(t, e, msgEvent(`{"amount": 3}`))
	if !errors.As(err, &re) || re.Line != 7 || !strings.Contains(err.Error(), "Error: boom") || !strings.Contains(err.Error(), "10-bad.js:7:") {
		t.Fatalf("throw: %v", err)
	}
	recs := logs.records("rule handler failed")
	if len(recs) != 2 || recs[1]["line"].(float64) != 7 || !strings.Contains(recs[1]["stack"].(string), "10-bad.js:7") {
		t.Fatalf("logs %v", recs)
	}
	st := e.Status()
	if st[0].Errors != 2 || st[0].Calls != 2 || st[1].Errors != 0 || st[1].Calls != 2 {
		t.Fatalf("status %+v", st)
	}
}

func TestSeveralFailingRulesAreJoined(t *testing.T) {
	e, _ := newEngine(t, map[string]string{
		"a.js": `on("message.received", () => { throw new Error("a") })`,
		"b.js": `on("message.received", () => { null.x })`,
	}, Options{})
	_, err := handle(t, e, msgEvent("x"))
	if err == nil || !strings.Contains(err.Error(), "rule a:") || !strings.Contains(err.Error(), "rule b:") {
		t.Fatalf("joined errors: %v", err)
	}
}

func TestTopLevelLoopIsCut(t *testing.T) {
	dir := t.TempDir()
	writeRules(t, dir, map[string]string{"hang.js": `while (true) {}`})
	e := New(Options{Globs: []string{dir + "/*.js"}})
	err := e.Reload()
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("top-level loop: %v", err)
	}
	if st := e.Status(); len(st) != 1 || st[0].Version != "" || !strings.Contains(st[0].LoadError, "at top level") {
		t.Fatalf("status %+v", st)
	}
}

func TestStatusP99(t *testing.T) {
	var s ruleStats
	for i := 1; i <= 1000; i++ {
		s.record(time.Duration(i) * time.Microsecond)
	}
	if got := s.p99(); got != 990*time.Microsecond {
		t.Fatalf("p99 %s", got)
	}
	var empty ruleStats
	if empty.p99() != 0 {
		t.Fatal("p99 of nothing")
	}
}

func asRuleError(err error, re **RuleError) bool { return errors.As(err, re) }
