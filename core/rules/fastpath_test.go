package rules

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dop251/goja"

	"github.com/wildcathub/wildcat/core/event"
)

// testVM is a runtime of a one-rule engine, as a call gets it.
func testVM(t *testing.T) *vm {
	t.Helper()
	e, _ := newEngine(t, map[string]string{"a.js": `on("message.received", () => {});`}, Options{})
	m, err := e.set.Load().versions[0].get()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestArrayStringsIsExportTo: stringList's fast path gives what goja's
// ExportTo gives (element values and the getters and toString calls it
// runs, in order), and leaves to ExportTo what it does not handle.
func TestArrayStringsIsExportTo(t *testing.T) {
	m := testVM(t)
	if err := m.rt.Set("__next", m.arrayIterNext); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, js string
		fast     bool
		want     []string // nil: ExportTo fails
	}{
		{"strings", `["a", "b"]`, true, []string{"a", "b"}},
		{"empty", `[]`, true, []string{}},
		{"other primitives and objects", `[1, true, null, undefined, {toString() { log.push("toString"); return "o" }}]`, true,
			[]string{"1", "true", "", "", "o"}},
		{"hole read through the prototype", `Array.prototype[0] = "proto"; log.push("set"); [, "x"]`, true, []string{"proto", "x"}},
		{"getter that grows the array", `const a = ["a"]; Object.defineProperty(a, 0, {get() { log.push("get"); a.push("more"); return "g" }}); a`, true,
			[]string{"g", "more"}},
		{"own iterator", `Object.assign(["a"], {[Symbol.iterator]: function* () { log.push("iter"); yield "x" }})`, false, []string{"x"}},
		{"patched iterator next", `const p = Object.getPrototypeOf([].values()); const next = p.next;
			p.next = function () { log.push("next"); return next.call(this) }; ["a"]`, false, []string{"a"}},
		{"proxy", `new Proxy(["a"], {get(t, k) { log.push("get " + String(k)); return t[k] }})`, false, []string{"a"}},
		{"over the iterator's cap", `new Array(70000)`, false, nil},
		{"string", `"a"`, false, nil},
		{"plain object", `({0: "a", length: 1})`, false, []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := func(convert func(goja.Value) ([]string, bool)) ([]string, bool, string) {
				t.Helper()
				v, err := m.rt.RunString(`var log = []; {` + tc.js + `}`)
				if err != nil {
					t.Fatal(err)
				}
				out, ok := convert(v)
				// Not by ExportTo, which iterates (the next under test).
				log, err := m.rt.RunString(`log.join(" | ")`)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := m.rt.RunString(`delete Array.prototype[0]; Object.getPrototypeOf([].values()).next = __next`); err != nil {
					t.Fatal(err)
				}
				return out, ok, log.String()
			}
			fast, took, fastLog := run(m.arrayStrings)
			if took != tc.fast {
				t.Fatalf("fast path taken: %v, want %v", took, tc.fast)
			}
			slow, ok, slowLog := run(func(v goja.Value) ([]string, bool) {
				var out []string
				err := m.rt.ExportTo(v, &out)
				return out, err == nil
			})
			if tc.want == nil {
				if ok {
					t.Fatalf("ExportTo succeeded with %q", slow)
				}
				return
			}
			if !ok || !reflect.DeepEqual(slow, tc.want) && !(len(slow) == 0 && len(tc.want) == 0) {
				t.Fatalf("ExportTo gave %q (ok %v), want %q", slow, ok, tc.want)
			}
			if took && (!slices.Equal(fast, slow) || fastLog != slowLog) {
				t.Fatalf("fast path gave %q (ran %q), ExportTo %q (ran %q)", fast, fastLog, slow, slowLog)
			}
		})
	}
	// A list from msg (a Go slice behind a dynamic array).
	v := m.toJS(reflect.ValueOf([]string{"p", "q"}))
	if out, ok := m.arrayStrings(v); !ok || !slices.Equal(out, []string{"p", "q"}) {
		t.Fatalf("msg list: %q, %v", out, ok)
	}
}

// TestHandlerStackIsReused: a handler call runs on the stack the runtime
// keeps (goja's fields are where stack.go looks for them), and nothing of
// the call stays on it afterwards.
func TestHandlerStackIsReused(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"a.js": `on("message.received", (msg) => { probe(msg.message.text); })`}, Options{})
	v := e.set.Load().versions[0]
	m, err := v.get()
	if err != nil {
		t.Fatal(err)
	}
	var onOwnStack []bool
	if err := m.rt.Set("probe", func(goja.FunctionCall) goja.Value {
		s := gojaStack(m.rt)
		onOwnStack = append(onOwnStack, s != nil && len(m.stack) > 0 && cap(*s) > 0 && &(*s)[:1][0] == &m.stack[0])
		return goja.Undefined()
	}); err != nil {
		t.Fatal(err)
	}
	v.put(m)
	for range 2 {
		if _, err := e.Handle(t.Context(), msgEvent("hi"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(onOwnStack, []bool{true, true}) {
		t.Fatalf("calls on the runtime's own stack: %v", onOwnStack)
	}
	for i, val := range m.stack {
		if val != nil {
			t.Fatalf("stack slot %d still holds %v after the call", i, val)
		}
	}
}

// TestPrivateRegexpCopiesAreBounded: a rule that compiles a new RegExp
// per match does not make its runtime keep every program it matched with;
// matches stay right and bounded by the deadline throughout.
func TestPrivateRegexpCopiesAreBounded(t *testing.T) {
	m := testVM(t)
	m.arm(time.Now().Add(time.Hour))
	defer m.disarm()
	v, err := m.rt.RunString(`let hits = 0;
for (let i = 0; i < 500; i++) if (new RegExp("(?=k" + i + ")k" + i + "$").test("k" + i)) hits++;
hits`)
	if err != nil {
		t.Fatal(err)
	}
	if v.ToInteger() != 500 {
		t.Fatalf("%d of 500 matched", v.ToInteger())
	}
	if n := len(m.privateRx); n == 0 || n > maxPrivateRx {
		t.Fatalf("%d private regexp entries kept, want 1..%d", n, maxPrivateRx)
	}
	for _, rx := range m.privateRx {
		if rx.MatchTimeout <= 59*time.Minute {
			t.Fatalf("a kept copy has timeout %s, want the hour left", rx.MatchTimeout)
		}
	}
}

// TestMsgObjectsAreMadeOnce: each nested object of msg is made once per
// call, however many of a struct's a rule reads and in whatever order.
func TestMsgObjectsAreMadeOnce(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"a.js": `
on("message.received", (msg, ctx) => {
  const m = msg.message, first = [m.quoted, m.mentions, m.location, m.media];
  const again = [m.media, m.location, m.mentions, m.quoted].reverse();
  ctx.annotate("same", first.every((o, i) => o === again[i] && typeof o === "object"));
  ctx.annotate("values", [m.quoted.messageId, m.mentions[0], m.location.name, m.media.mimetype].join(" "));
});`}, Options{})
	ev := msgEvent("x")
	ev.Message.Quoted = &event.Quoted{MessageID: "Q1"}
	ev.Message.Mentions = []string{"1@s.whatsapp.net"}
	ev.Message.Location = &event.Location{Latitude: 1, Name: "here"}
	ev.Message.Media = &event.Media{Mimetype: "image/png"}
	want := `[{"kind":"annotate","key":"same","value":"true"},{"kind":"annotate","key":"values","value":"Q1 1@s.whatsapp.net here image/png"}]`
	if got := effectsJSON(t, mustHandle(t, e, ev)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
