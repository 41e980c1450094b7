package rules

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/dop251/goja"
)

// redosText makes /^(a+)+(?!x)$/ backtrack for minutes on regexp2: 2^30
// ways to split the a's, each failing at the "!".
var redosText = strings.Repeat("a", 30) + "!"

// liveHeap is the heap after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestBuiltinsAreCutWithinTheDeadline: each rule the adversarial probe
// (and its close cousins) used to escape its 50 ms deadline inside a
// built-in — a backtracking regexp, one-call allocations of gigabytes — is
// cut within the deadline + 100 ms (the criterion), reported with
// its line, and leaves the heap under the memory budget. The runtime
// stays usable: the next event is handled normally.
func TestBuiltinsAreCutWithinTheDeadline(t *testing.T) {
	const deadline = 50 * time.Millisecond
	budget := liveHeap() + 256<<20
	tests := []struct {
		name, expr string
		timeout    bool   // cut by the deadline (else a RangeError)
		msg        string // in the error message
	}{
		{"redos test", `/^(a+)+(?!x)$/.test(text)`, true, "deadline"},
		{"redos exec", `/^(a+)+(?!x)$/.exec(text)`, true, "deadline"},
		{"redos string match", `text.match(/^(a+)+(?!x)$/)`, true, "deadline"},
		{"redos replace", `text.replace(/^(a+)+(?!x)$/, "y")`, true, "deadline"},
		{"redos split", `text.split(/^(a+)+(?!x)$/)`, true, "deadline"},
		{"redos new RegExp", `new RegExp("^(a+)+(?!x)$").test(text)`, true, "deadline"},
		// RE2-compatible, so goja starts on Go's regexp, but from a
		// lastIndex > 0 it switches to regexp2.
		{"redos from lastIndex", `(() => { const r = /(a+)+$/g; r.lastIndex = 1; return r.exec(text) })()`, true, "deadline"},
		{"repeat 2**30", `"x".repeat(2**30)`, false, "String.prototype.repeat"},
		{"padEnd", `"x".padEnd(2**30, "y")`, false, "String.prototype.padEnd"},
		{"concat", `big.concat(...new Array(1000).fill(big))`, false, "String.prototype.concat"},
		{"new Array(3e7).fill", `new Array(3e7).fill(0)`, false, "Array.prototype.fill"},
		{"new Array(3e7).join", `new Array(3e7).join("x")`, false, "Array.prototype.join"},
		{"new Array(3e7).forEach", `new Array(3e7).forEach(x => x)`, false, "Array.prototype.forEach"},
		{"array-like indexOf", `Array.prototype.indexOf.call({length: 2**53 - 1}, 1)`, false, "Array.prototype.indexOf"},
		{"Array.from length", `Array.from({length: 3e7})`, false, "Array.from"},
		{"join of one long string", `new Array(1000).fill(big).join("")`, false, "Array.prototype.join"},
		{"join of objects", `new Array(1000).fill({toString: () => big}).join("")`, false, "Array.prototype.join"},
		{"toString of objects", `String(new Array(1000).fill({toString: () => big}))`, false, "Array.prototype.join"},
		{"toLocaleString of objects", `new Array(1000).fill({toLocaleString: () => big}).toLocaleString()`, false, "Array.prototype.toLocaleString"},
		{"concat of objects", `"".concat(...new Array(1000).fill({toString: () => big}))`, false, "String.prototype.concat"},
		{"replaceAll with a long replacement", `big.replaceAll("x", big)`, false, "String.prototype.replaceAll"},
		{"global regexp replace", `big.replace(/x/g, big)`, false, "String.prototype.replace"},
		// 1.5 M characters, found one short match at a time: the deadline
		// comes first.
		{"replace patterns", `big.replace(/x/g, "$&$&$&")`, true, "deadline"},
		{"replaceAll with patterns", `big.replaceAll("x", "$&$&$&")`, false, "String.prototype.replaceAll"},
		{"template of a join", "`${new Array(1000).fill(big)}`", false, "Array.prototype.join"},
		{"stringify of one long string", `JSON.stringify(new Array(1000).fill(big + big))`, false, "JSON.stringify"},
		{"stringify with a property list", `JSON.stringify(new Array(1000).fill(big + big), ["a"])`, false, "JSON.stringify"},
		{"spread of a sparse array", `[...new Array(3e7)]`, false, "[Symbol.iterator]"},
		{"concat of one array many times", `[].concat(...new Array(1000).fill(new Array(60000)))`, false, "Array.prototype.concat"},
		{"flat of one array many times", `new Array(1000).fill(new Array(60000)).flat()`, false, "Array.prototype.flat"},
		{"String.raw", `String.raw({raw: {length: 3e7}})`, false, "String.raw"},
		{"Set from a sparse array", `new Set(new Array(3e7))`, false, "[Symbol.iterator]"},
		{"spread of a long string", `[...big]`, false, "[Symbol.iterator]"},
		{"apply of an array-like", `Math.max.apply(null, {length: 3e7})`, false, "Function.prototype.apply"},
		{"Reflect.apply", `Reflect.apply(Math.max, null, {length: 3e7})`, false, "Reflect.apply"},
		{"Array.from a long string", `Array.from(big)`, false, "Array.from"},
		{"Object.entries of a long string", `Object.entries(big)`, false, "Object.entries"},
		{"split into characters", `big.split("")`, false, "String.prototype.split"},
		{"JSON.parse of a long text", `JSON.parse(big + big + "  ")`, false, "JSON.parse"},
		{"ArrayBuffer", `new ArrayBuffer(2**30)`, false, "ArrayBuffer"},
		{"Float64Array", `new Float64Array(2**28)`, false, "Float64Array"},
		{"typed array by its constructor property", `new (new Uint8Array(1)).constructor(2**30)`, false, "Uint8Array"},
		{"typed array from", `Uint8Array.from({length: 3e7})`, false, "Uint8Array"},
		{"typed array from array-like", `new Uint8Array({length: 3e7})`, false, "Uint8Array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newEngine(t, map[string]string{"probe.js": `const big = "x".repeat(1 << 19);
on("message.received", (msg, ctx) => {
  const text = msg.message.text;
  if (text !== "ok") {
    ctx.tag(String(` + tt.expr + `));
  }
  ctx.tag("ok");
});`}, Options{Timeout: deadline, MemoryLimit: budget})

			start := time.Now()
			effs, err := handle(t, e, msgEvent(redosText))
			took := time.Since(start)
			t.Logf("cut after %s: %v", took, err)
			if took > deadline+100*time.Millisecond {
				t.Errorf("took %s, over the deadline %s + 100 ms", took, deadline)
			}
			var re *RuleError
			if !errors.As(err, &re) || re.Line != 5 || !strings.Contains(re.Message, tt.msg) {
				t.Fatalf("want a RuleError at line 5 mentioning %q, got %v", tt.msg, err)
			}
			if re.Timeout != tt.timeout || errors.Is(err, ErrTimeout) != tt.timeout {
				t.Fatalf("timeout %v, want %v: %v", re.Timeout, tt.timeout, err)
			}
			if !tt.timeout && !strings.Contains(re.Message, "RangeError") {
				t.Fatalf("want a RangeError: %v", err)
			}
			if len(effs) != 0 {
				t.Fatalf("effects of a cut call: %v", effs)
			}
			if heap := liveHeap(); heap > budget {
				t.Fatalf("heap %d MiB over the budget %d MiB", heap>>20, budget>>20)
			}
			if got := effectsJSON(t, mustHandle(t, e, msgEvent("ok"))); got != `[{"kind":"tag","tags":["ok"]}]` {
				t.Fatalf("the call after the cut: %s", got)
			}
		})
	}
}

// TestLateReturnFromABuiltinIsATimeout: a built-in that runs past the
// deadline with no instruction after it to see the pending interrupt —
// here the handler itself is a bound built-in — still makes the call a
// timeout.
func TestLateReturnFromABuiltinIsATimeout(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"late.js": `const a = "ab".repeat(1 << 19), b = a + "c";
on("message.received", String.prototype.localeCompare.bind(a, b));`}, Options{Timeout: 5 * time.Millisecond})
	effs, err := handle(t, e, msgEvent("x"))
	if !errors.Is(err, ErrTimeout) || len(effs) != 0 {
		t.Fatalf("want a timeout, got %v (effects %v)", err, effs)
	}
	if st := e.Status()[0]; st.Timeouts != 1 {
		t.Fatalf("status %+v", st)
	}
}

// TestBuiltinsBelowTheCapsStillWork: the checked built-ins behave as before
// for ordinary sizes, including the spec paths goja takes once exec is
// replaced (match, replace, split, matchAll, search, sticky and global
// regexps).
func TestBuiltinsBelowTheCapsStillWork(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"ok.js": `
on("message.received", (msg, ctx) => {
  const out = [
    "ab".repeat(3), "7".padStart(3, "0"), "x".padEnd(3, "-"), "a".concat("b", 1),
    [1, 2, 3].join("+"), String([1, [2, 3]]), new Array(3).fill(0).join(""), Array.from({length: 2}, (_, i) => i).join(),
    [3, 1, 2].sort().indexOf(3), "a-b-c".split(/-/).length, "a1b22".replace(/\d+/g, m => "<" + m + ">"),
    "x1y2".match(/\d/g).join(""), [..."a1b2".matchAll(/(?<d>\d)/g)].map(m => m.groups.d).join(""),
    "abc".search(/c/), /(?<=a)b/.test("ab"), /^(\w+)\s\1$/.test("hey hey"),
    (() => { const r = /a/y; r.lastIndex = 1; return r.test("ba") })(),
    (() => { const r = /o/g; r.exec("foo"); return r.exec("foo").index })(),
    JSON.stringify({a: [1, "x"], b: {c: null}}), JSON.stringify({a: 1, b: 2}, (k, v) => k === "b" ? undefined : v),
    JSON.stringify({a: 1, b: 2}, ["b", "a"]), JSON.stringify([1], null, 2),
    new Uint8Array(4).length, new Uint8Array([1, 2]).length, Uint8Array.from([1, 2, 3]).length, new ArrayBuffer(8).byteLength,
    new Uint8Array(8) instanceof Uint8Array, new Uint8Array(2).constructor === Uint8Array, new Uint8Array([1, 2, 3]).slice(1).length,
    [1, , null, undefined, {toString: () => "o"}].join("-"), [1, "a", null].toLocaleString(), "".concat({toString: () => "t"}, 2),
    "a.b.c".replace(".", "$&$&"), "a.b.c".replaceAll(".", "-"), "aXbX".replace(/X/g, "[$&]"), "abc".replace(/(b)/, "$1$1$'"),
    "xx".replace("", "_"), "xx".replaceAll("", "_"),
    (() => { const t = "ab ".repeat(3000); return t.replace(/(?<w>\w+)/g, "<$1|$<w>|$&|$$|$9>").length === t.length + 3000 * 13 })(),
    (() => { const t = "xy".repeat(100); return t.replaceAll("y", "$'").length })(),
    [..."héllo"].length, [...new Set([1, 1, 2])].length, Math.max.apply(null, [1, 5, 2]), Reflect.apply(Math.min, null, [3, 2]),
    Object.keys("abc").join(""), "a,b,,c".split(",").length, "abc".split("").join("."), "a1b2c".split(/\d/).join(""),
    JSON.parse('{"a":[1,{"b":2}]}').a[1].b, (() => { const [x, y] = [7, 8]; return x + y })(),
    (() => { let n = 0; for (const c of "xyz") n++; return n })(),
    [1, [2, [3, [4]]]].flat(Infinity).join(""), [1].concat([2, 3], 4, [[5]]).length, String.raw({raw: ["a", "b"]}, 1),
  ];
  ctx.tag(out.join("|"));
});`}, Options{Timeout: 5 * time.Second})
	want := `ababab|007|x--|ab1|1+2+3|1,2,3|000|0,1|2|3|a<1>b<22>|12|12|2|true|true|true|2|{"a":[1,"x"],"b":{"c":null}}|{"a":1}|{"b":2,"a":1}|[` + "\n  1\n" + `]|4|2|3|8|true|true|2|1----o|1,a,|t2|a..b.c|a-b-c|a[X]b[X]|abbcc|_xx|_x_x_|true|10000|5|2|5|2|012|4|a.b.c|abc|2|15|3|1234|5|a1b`
	effs := mustHandle(t, e, msgEvent("x"))
	if len(effs) != 1 || len(effs[0].Tags) != 1 || effs[0].Tags[0] != want {
		t.Fatalf("got  %s\nwant %q", effectsJSON(t, effs), want)
	}
}

// TestRegexpTimeoutReachesGoja: boundRegexp reaches the regexp2 program
// behind a RegExp object (a goja upgrade that moves the fields fails here)
// and sets the timeout on a private copy, leaving the program the rule's
// other runtimes share untouched.
func TestRegexpTimeoutReachesGoja(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"a.js": `var r1 = /^(a+)+(?!x)$/; var re2 = /a+/g;
on("message.received", () => {})`}, Options{})
	v := e.set.Load().versions[0]
	m, err := v.newVM()
	if err != nil {
		t.Fatal(err)
	}
	other, err := v.newVM()
	if err != nil {
		t.Fatal(err)
	}
	rxIn := func(m *vm, name string) *regexp2.Regexp {
		pat := regexpPattern(m.rt.Get(name).(*goja.Object))
		w := pat.FieldByName("regexp2Wrapper")
		if !w.IsValid() || w.IsNil() {
			return nil
		}
		rx := w.Elem().FieldByName("rx")
		return reflect.NewAt(rx.Type(), rx.Addr().UnsafePointer()).Elem().Interface().(*regexp2.Regexp)
	}
	rxOf := func(name string) *regexp2.Regexp { return rxIn(m, name) }
	shared := rxOf("r1")
	if shared == nil || shared != rxIn(other, "r1") {
		t.Fatal("expected the literal's objects in two runtimes to start on the shared regexp2 program")
	}
	if rxOf("re2") != nil {
		t.Fatal("a RE2-compatible pattern should start without regexp2")
	}
	// Matches through the runtime's RegExp.prototype.test, as a rule's.
	match := func(name string, left time.Duration) *regexp2.Regexp {
		t.Helper()
		m.arm(time.Now().Add(left))
		defer m.disarm()
		if _, err := m.rt.RunString(name + `.test("aaa")`); err != nil {
			t.Fatal(err)
		}
		rx := rxOf(name)
		if rx == nil || rx == shared {
			t.Fatalf("%s: no private regexp2 program", name)
		}
		if rx.MatchTimeout < left-time.Minute || rx.MatchTimeout > left {
			t.Fatalf("%s: match timeout %s, want the %s left", name, rx.MatchTimeout, left)
		}
		return rx
	}
	for _, name := range []string{"r1", "re2"} {
		first := match(name, time.Hour)
		// The next call moves the timeout of the same private copy.
		if again := match(name, 2*time.Hour); again != first {
			t.Fatalf("%s: a new copy for every match", name)
		}
	}
	// Another object of the same literal shares the runtime's copy.
	if _, err := m.rt.RunString(`var r1b = new RegExp(r1)`); err != nil {
		t.Fatal(err)
	}
	if match("r1b", 3*time.Hour) != rxOf("r1") || rxOf("r1").MatchTimeout < 2*time.Hour {
		t.Fatal("the copy of r1 is not shared by r1b in the same runtime")
	}
	if shared.MatchTimeout != MaxTimeout || rxIn(other, "r1") != shared {
		t.Fatalf("the shared program changed: timeout %s", shared.MatchTimeout)
	}
}

// TestSixReDoSDoNotStarveOtherChats: six backtracking messages at once
// are all cut, and meanwhile a normal message is answered; nothing keeps
// running after the calls return.
func TestSixReDoSDoNotStarveOtherChats(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"redos.js": `
on("message.received", (msg, ctx) => {
  if (msg.message.text === "hello") { ctx.tag("answered"); return; }
  ctx.tag(String(/^(a+)+(?!x)$/.test(msg.message.text)));
});`}, Options{Timeout: 50 * time.Millisecond})
	goroutines := runtime.NumGoroutine()

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []error
	)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.Handle(context.Background(), msgEvent(redosText), nil)
			mu.Lock()
			results = append(results, err)
			mu.Unlock()
		}()
	}
	if got := effectsJSON(t, mustHandle(t, e, msgEvent("hello"))); got != `[{"kind":"tag","tags":["answered"]}]` {
		t.Fatalf("the normal message: %s", got)
	}
	wg.Wait()
	for i, err := range results {
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("redos call %d: %v", i, err)
		}
	}
	if st := e.Status()[0]; st.Timeouts != 6 || st.Calls != 7 {
		t.Fatalf("status %+v", st)
	}
	if got := effectsJSON(t, mustHandle(t, e, msgEvent("hello"))); got != `[{"kind":"tag","tags":["answered"]}]` {
		t.Fatalf("after the cuts: %s", got)
	}
	// The regexp ran in the calling goroutines; once they returned nothing
	// is left burning (the watchdog and regexp2's clock stop on their own).
	waitFor(t, func() bool { return runtime.NumGoroutine() <= goroutines })
}

// TestMemoryLimitBoundsWhatARuleKeeps: a rule that keeps 5 MiB per event in
// a global grew without bound; now the heap stays under the budget: when it
// passes, the runtimes holding the globals are discarded (and a call running
// at that moment is cut with ErrMemoryLimit). Later events run on fresh
// runtimes, which start with empty globals.
func TestMemoryLimitBoundsWhatARuleKeeps(t *testing.T) {
	budget := liveHeap() + 64<<20
	logs := &logBuffer{}
	e, _ := newEngine(t, map[string]string{"hoard.js": `
const kept = [], chunk = "y".repeat(1 << 20);
on("message.received", (msg, ctx) => {
  kept.push(chunk + chunk + chunk + chunk + chunk + msg.message.text);
  ctx.tag(String(kept.length));
});`}, Options{MemoryLimit: budget, Logger: logs.logger(), Timeout: 5 * time.Second})

	var cuts, handlerCuts, resets, peak int64
	prev := 0
	const events = 40 // 200 MiB kept without the limit
	for i := range events {
		effs, err := handle(t, e, msgEvent(fmt.Sprint(i)))
		switch {
		case err == nil:
			var n int
			fmt.Sscan(effs[0].Tags[0], &n)
			if n < prev {
				resets++
			}
			prev = n
		case errors.Is(err, ErrMemoryLimit):
			// In the handler, or in a fresh runtime's top level (its chunk).
			var re *RuleError
			if !errors.As(err, &re) || (re.Line != 4 && re.Line != 2) || re.Timeout {
				t.Fatalf("memory cut: %#v", err)
			}
			if re.Line == 4 {
				handlerCuts++
			}
			cuts++
			prev = 0
		default:
			t.Fatalf("event %d: %v", i, err)
		}
		peak = max(peak, liveHeap())
	}
	t.Logf("%d cuts, %d resets, peak live heap %d MiB, budget %d MiB", cuts, resets, peak>>20, budget>>20)
	if cuts+resets == 0 {
		t.Fatal("the rule's runtime was never discarded")
	}
	// One call's 5 MiB may land past the limit before the next check.
	if peak > budget+16<<20 {
		t.Fatalf("peak heap %d MiB over the budget %d MiB", peak>>20, budget>>20)
	}
	if st := e.Status()[0]; st.Errors != cuts || st.Calls != events-(cuts-handlerCuts) {
		t.Fatalf("status %+v", st)
	}
	if recs := logs.records("rule handler cut at the memory limit"); int64(len(recs)) != handlerCuts {
		t.Fatalf("%d cut logs for %d cuts in the handler", len(recs), handlerCuts)
	}
	if len(logs.records("rules' memory limit reached: runtimes discarded")) == 0 {
		t.Fatal("no log of the discarded runtimes")
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatal("condition not reached within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
