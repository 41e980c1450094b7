package rules

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/dlclark/regexp2/v2"
	"github.com/dop251/goja"
)

// A handler's deadline is enforced by goja's Interrupt, which the VM checks
// between bytecode instructions, never inside a built-in written in Go. A
// built-in that loops or allocates in proportion to an argument ("x".repeat,
// Array.prototype.fill on new Array(3e7), a backtracking regexp) therefore
// ran on long past the deadline. This file bounds them: regexps get a match
// timeout equal to what is left of the deadline, and the built-ins whose
// work an argument or a cheap length controls refuse sizes above fixed caps
// with a RangeError, before they start. Everything else a rule does is
// bytecode, cut by the deadline, or grows the heap, cut by the memory
// watchdog (memwatch.go).

const (
	// MaxBuiltinElements is the largest length an Array built-in
	// (fill, join, indexOf, map, sort, …) or Array.from accepts in one call.
	// Sparse arrays make a huge length cheap (new Array(3e7)) while these
	// built-ins walk every index natively at 100–1000 ns each (more on a
	// loaded machine), so the cap keeps one call near 100 ms at worst; a
	// WhatsApp text (65,536 characters at most) still splits into
	// characters.
	MaxBuiltinElements = 1 << 16
	// MaxBuiltinString is the longest string (in UTF-16 units) that
	// repeat, padStart, padEnd, concat, join and JSON.stringify build in one
	// call: far above any WhatsApp text (65,536 characters) or kv value
	// (64 KiB), and small enough that building it stays within milliseconds.
	MaxBuiltinString = 1 << 20
	// MaxBuiltinBytes is the largest ArrayBuffer or typed array a rule
	// can allocate in one call. Typed arrays have built-ins of their own
	// (join, sort, map, …) that walk every element; this keeps their
	// length within MaxBuiltinElements.
	MaxBuiltinBytes = MaxBuiltinElements
)

// regexpClockPeriod is how often regexp2's shared clock ticks while any
// match with a timeout runs; a match stops at most about two periods after
// its deadline. The library default (100 ms) would let a ReDoS overrun a
// 50 ms deadline by 200 ms. It is a package variable of regexp2 read by its
// clock goroutine, so it is set once, before any rule runs.
const regexpClockPeriod = 10 * time.Millisecond

func init() {
	regexp2.SetTimeoutCheckPeriod(regexpClockPeriod)
	// Backstop for a regexp2 program compiled and run inside one built-in
	// call before boundRegexp could see it: no match may run longer than a
	// rule's longest deadline.
	regexp2.DefaultMatchTimeout = MaxTimeout
}

// typedArrayGuard wraps the buffer and typed array constructors of a
// runtime in a Proxy whose construct trap calls guard first, both as the
// global and as prototype.constructor (the way back to the original). goja's
// instanceof does not see through a Proxy to the function it wraps, so the
// real constructor answers it (the Proxy forwards the get of
// Symbol.hasInstance to it) as OrdinaryHasInstance would.
var typedArrayGuard = goja.MustCompile("rules-limits.js", `(function (guard) {
	const isProto = Object.prototype.isPrototypeOf;
	for (const name of ["ArrayBuffer", "SharedArrayBuffer", "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array",
		"Uint16Array", "Int32Array", "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"]) {
		const target = globalThis[name];
		if (typeof target !== "function") continue;
		const per = target.BYTES_PER_ELEMENT || 1;
		Object.defineProperty(target, Symbol.hasInstance, {value: o => isProto.call(target.prototype, o)});
		const guarded = new Proxy(target, {
			construct(t, args, nt) { guard(name, per, args[0]); return Reflect.construct(t, args, nt); },
		});
		const hidden = {writable: true, configurable: true, enumerable: false};
		Object.defineProperty(globalThis, name, {value: guarded, ...hidden});
		// Else (new Uint8Array(1)).constructor is the unguarded original.
		Object.defineProperty(target.prototype, "constructor", {value: guarded, ...hidden});
	}
})`, true)

// installLimits replaces the unbounded built-ins of a fresh runtime with
// checked versions. It runs before anything else sees the runtime, so the
// engine's own JSON.stringify (kv values, logs) is checked too.
func (m *vm) installLimits() error {
	rt := m.rt
	rangeErr, ok := goja.AssertConstructor(rt.Get("RangeError"))
	if !ok {
		return fmt.Errorf("no RangeError constructor")
	}
	m.rangeErr = rangeErr

	resolveRegexpFields(rt)
	rxProto := rt.Get("RegExp").ToObject(rt).Get("prototype").ToObject(rt)
	for _, name := range []string{"exec", "test"} {
		orig, err := nativeMethod(rxProto, name)
		if err != nil {
			return err
		}
		// Replacing exec also makes goja take its spec path for
		// match/replace/split/search/matchAll, which calls exec: every
		// regexp match in the runtime comes through here.
		if err := redefine(rt, rxProto, name, func(c goja.FunctionCall) goja.Value {
			return m.matchBounded(c, orig)
		}); err != nil {
			return err
		}
	}

	strProto := rt.Get("String").ToObject(rt).Get("prototype").ToObject(rt)
	if err := m.wrap(strProto, "repeat", func(c goja.FunctionCall) {
		n := c.Argument(0).ToFloat()
		m.checkString("String.prototype.repeat", float64(thisString(rt, c).Length())*n)
	}); err != nil {
		return err
	}
	for _, name := range []string{"padStart", "padEnd"} {
		fn := "String.prototype." + name // built once, not per call
		if err := m.wrap(strProto, name, func(c goja.FunctionCall) {
			m.checkString(fn, c.Argument(0).ToFloat())
		}); err != nil {
			return err
		}
	}
	// concat converts its arguments itself (each toString runs once, as
	// the spec has it) so that the total is known before anything is built.
	if err := m.wrapCall(strProto, "concat", func(c goja.FunctionCall, orig jsFunc) goja.Value {
		this := thisString(rt, c)
		total := float64(this.Length())
		args := make([]goja.Value, len(c.Arguments))
		for i, a := range c.Arguments {
			str := jsString(rt, a)
			args[i] = str
			total += float64(str.Length())
		}
		m.checkString("String.prototype.concat", total)
		return orig(goja.FunctionCall{This: this, Arguments: args})
	}); err != nil {
		return err
	}
	for _, name := range []string{"replace", "replaceAll"} {
		fn, all := "String.prototype."+name, name == "replaceAll"
		if err := m.wrapCall(strProto, name, func(c goja.FunctionCall, orig jsFunc) goja.Value {
			m.checkReplace(fn, all, c)
			return orig(c)
		}); err != nil {
			return err
		}
	}

	arrProto := rt.Get("Array").ToObject(rt).Get("prototype").ToObject(rt)
	for _, name := range arrProto.GetOwnPropertyNames() {
		switch name {
		case "constructor", "length", "push", "pop", "at", "keys", "values", "entries":
			// O(1) or lazy: nothing to bound.
			continue
		case "toString":
			continue // calls this.join
		case "join":
			if err := m.wrapCall(arrProto, name, m.join); err != nil {
				return err
			}
			continue
		case "toLocaleString":
			if err := redefine(rt, arrProto, name, m.toLocaleString); err != nil {
				return err
			}
			continue
		case "concat":
			// The arguments' elements are copied too: one array passed
			// a thousand times is small, its concatenation is not.
			if err := m.wrap(arrProto, name, func(c goja.FunctionCall) {
				total := m.lengthOf(c.This)
				for _, a := range c.Arguments {
					if o, ok := a.(*goja.Object); ok && o.ClassName() == "Array" {
						total += m.lengthOf(o)
					}
				}
				m.checkCount("Array.prototype.concat", total)
			}); err != nil {
				return err
			}
			continue
		case "flat":
			// Nested arrays may be the same array many times over: count
			// what flat would walk, stopping at the cap.
			if err := m.wrap(arrProto, name, func(c goja.FunctionCall) {
				m.checkLength("Array.prototype.flat", c.This)
				depth := 1.0
				if d := c.Argument(0); !goja.IsUndefined(d) {
					depth = d.ToFloat()
				}
				if o, ok := c.This.(*goja.Object); ok {
					var n float64
					m.countFlat(o, depth, &n)
				}
			}); err != nil {
				return err
			}
			continue
		}
		if _, ok := goja.AssertFunction(arrProto.Get(name)); !ok {
			continue
		}
		fn := "Array.prototype." + name
		if err := m.wrap(arrProto, name, func(c goja.FunctionCall) { m.checkLength(fn, c.This) }); err != nil {
			return err
		}
	}
	arrCtor := rt.Get("Array").ToObject(rt)
	if err := m.wrap(arrCtor, "from", func(c goja.FunctionCall) {
		m.checkLength("Array.from", c.Argument(0))
	}); err != nil {
		return err
	}
	// String.raw joins raw's every index.
	strCtor := rt.Get("String").ToObject(rt)
	if err := m.wrap(strCtor, "raw", func(c goja.FunctionCall) {
		if o, ok := c.Argument(0).(*goja.Object); ok {
			m.checkLength("String.raw", o.Get("raw"))
		}
	}); err != nil {
		return err
	}
	// Spread, destructuring, new Set/Map(…), Promise.all and Array.from
	// walk an iterator natively to its end: a sparse array's 3e7 holes or
	// every character of a long string. The iterator methods check the
	// length first (for-of is bytecode, but goes through them too).
	for _, proto := range []*goja.Object{arrProto, strProto} {
		if err := m.wrapSymbol(proto, goja.SymIterator, func(c goja.FunctionCall) {
			m.checkLength("[Symbol.iterator]", c.This)
		}); err != nil {
			return err
		}
	}
	// What a list handed to ctx.tag and the like iterates with, for the
	// fast path of stringList (api_ctx.go).
	m.arrayIter = arrProto.GetSymbol(goja.SymIterator)
	iterProto, err := rt.RunString("Object.getPrototypeOf([].values())")
	if err != nil {
		return err
	}
	m.arrayIterProto = iterProto.ToObject(rt)
	m.arrayIterNext = m.arrayIterProto.Get("next")
	// apply and construct turn an array-like into an argument list at once.
	funcProto := rt.Get("Function").ToObject(rt).Get("prototype").ToObject(rt)
	if err := m.wrap(funcProto, "apply", func(c goja.FunctionCall) {
		m.checkLength("Function.prototype.apply", c.Argument(1))
	}); err != nil {
		return err
	}
	reflectObj := rt.Get("Reflect").ToObject(rt)
	for _, name := range []string{"apply", "construct"} {
		argsAt := map[string]int{"apply": 2, "construct": 1}[name]
		fn := "Reflect." + name
		if err := m.wrap(reflectObj, name, func(c goja.FunctionCall) {
			m.checkLength(fn, c.Argument(argsAt))
		}); err != nil {
			return err
		}
	}
	// Object.keys and friends list a string's every index.
	objCtor := rt.Get("Object").ToObject(rt)
	for _, name := range []string{"keys", "values", "entries", "getOwnPropertyNames"} {
		fn := "Object." + name
		if err := m.wrap(objCtor, name, func(c goja.FunctionCall) {
			if s, ok := c.Argument(0).(goja.String); ok {
				m.checkLength(fn, s)
			}
		}); err != nil {
			return err
		}
	}
	// split with a string separator: the number of parts is counted
	// exactly; a regexp separator runs through exec, which stops at the
	// deadline.
	if err := m.wrap(strProto, "split", func(c goja.FunctionCall) {
		sep := c.Argument(0)
		if o, ok := sep.(*goja.Object); ok && isSet(o.GetSymbol(goja.SymSplit)) {
			return
		}
		if goja.IsUndefined(sep) {
			return
		}
		if l := c.Argument(1); !goja.IsUndefined(l) && l.ToFloat() <= MaxBuiltinElements {
			return
		}
		subject := thisString(rt, c)
		parts := subject.Length()
		if p := sep.String(); p != "" {
			parts = strings.Count(subject.String(), p) + 1
		}
		if parts > MaxBuiltinElements {
			m.throwRange("String.prototype.split: %d parts is over the rules' limit of %d elements per built-in call", parts, MaxBuiltinElements)
		}
	}); err != nil {
		return err
	}

	jsonObj := rt.Get("JSON").ToObject(rt)
	if err := m.wrapStringify(jsonObj); err != nil {
		return err
	}
	// JSON.parse builds values natively in proportion to its input (up
	// to about 1 µs per value for the densest input), so its input has the
	// string cap (ctx.http.fetch's res.json() included).
	if err := m.wrap(jsonObj, "parse", func(c goja.FunctionCall) {
		m.checkString("JSON.parse", float64(jsString(rt, c.Argument(0)).Length()))
	}); err != nil {
		return err
	}

	// Constructors are wrapped in a Proxy: instanceof, subclassing and the
	// static from/of (which construct through this) keep working.
	guard := rt.ToValue(func(c goja.FunctionCall) goja.Value {
		name, bytesPer, arg := c.Argument(0).String(), c.Argument(1).ToFloat(), c.Argument(2)
		switch a := arg.(type) {
		case *goja.Object:
			if _, isBuf := a.Export().(goja.ArrayBuffer); !isBuf {
				m.checkLength(name, a)
			}
		default:
			if !goja.IsUndefined(arg) {
				if n := arg.ToFloat() * bytesPer; n > MaxBuiltinBytes || math.IsNaN(n) {
					m.throwRange("%s: %.0f bytes is over the rules' limit of %d bytes per allocation", name, n, MaxBuiltinBytes)
				}
			}
		}
		return goja.Undefined()
	})
	fn, err := rt.RunProgram(typedArrayGuard)
	if err != nil {
		return err
	}
	install, _ := goja.AssertFunction(fn)
	_, err = install(goja.Undefined(), guard)
	return err
}

// nativeMethod is obj[name] as the Go function goja implements it with.
// Calling it directly (not through goja.Callable) lets its exceptions and
// interrupts pass through unchanged.
func nativeMethod(obj *goja.Object, name string) (jsFunc, error) {
	f, ok := obj.Get(name).Export().(func(goja.FunctionCall) goja.Value)
	if !ok {
		return nil, fmt.Errorf("%s is not a native function", name)
	}
	return f, nil
}

// redefine replaces a built-in method keeping its attributes (writable,
// configurable, not enumerable).
func redefine(rt *goja.Runtime, obj *goja.Object, name string, fn jsFunc) error {
	return obj.DefineDataProperty(name, rt.ToValue(fn), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// wrap replaces obj[name] with check followed by the original.
func (m *vm) wrap(obj *goja.Object, name string, check func(goja.FunctionCall)) error {
	return m.wrapCall(obj, name, func(c goja.FunctionCall, orig jsFunc) goja.Value {
		check(c)
		return orig(c)
	})
}

// wrapSymbol replaces obj[sym] with check followed by the original.
func (m *vm) wrapSymbol(obj *goja.Object, sym *goja.Symbol, check func(goja.FunctionCall)) error {
	orig, ok := obj.GetSymbol(sym).Export().(func(goja.FunctionCall) goja.Value)
	if !ok {
		return fmt.Errorf("%s is not a native function", sym)
	}
	fn := func(c goja.FunctionCall) goja.Value {
		check(c)
		return orig(c)
	}
	return obj.DefineDataPropertySymbol(sym, m.rt.ToValue(fn), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// wrapCall replaces obj[name] with fn, which gets the original to call.
func (m *vm) wrapCall(obj *goja.Object, name string, fn func(c goja.FunctionCall, orig jsFunc) goja.Value) error {
	orig, err := nativeMethod(obj, name)
	if err != nil {
		return err
	}
	return redefine(m.rt, obj, name, func(c goja.FunctionCall) goja.Value { return fn(c, orig) })
}

func isSet(v goja.Value) bool { return v != nil && !goja.IsUndefined(v) && !goja.IsNull(v) }

func thisString(rt *goja.Runtime, c goja.FunctionCall) goja.String {
	if goja.IsUndefined(c.This) || goja.IsNull(c.This) {
		panic(rt.NewTypeError("String.prototype method called on null or undefined"))
	}
	return jsString(rt, c.This)
}

// jsString is ToString(v) as a goja.String (goja's ToString of a number
// is not one).
func jsString(rt *goja.Runtime, v goja.Value) goja.String {
	if s, ok := v.(goja.String); ok {
		return s
	}
	s := v.ToString()
	if str, ok := s.(goja.String); ok {
		return str
	}
	return rt.ToValue(s.String()).(goja.String)
}

// stopIfPastDeadline throws from a Go function that a built-in calls in a
// loop, once the call's deadline has passed. The interrupt is pending as
// well, so a rule that catches this is cut at its next instruction.
func (m *vm) stopIfPastDeadline() {
	m.mu.Lock()
	past := m.running && !time.Now().Before(m.deadline)
	m.mu.Unlock()
	if past {
		m.onDeadline()
		m.throwGo(m.v.interrupt)
	}
}

func (m *vm) throwRange(format string, args ...any) {
	obj, err := m.rangeErr(nil, m.rt.ToValue(fmt.Sprintf(format, args...)))
	if err != nil {
		panic(err)
	}
	panic(obj)
}

func (m *vm) checkString(fn string, length float64) {
	if length > MaxBuiltinString {
		m.throwRange("%s: a string of %.0f characters is over the rules' limit of %d", fn, length, MaxBuiltinString)
	}
}

// checkLength refuses an array or array-like whose length is over the cap.
func (m *vm) checkLength(fn string, this goja.Value) {
	var n float64
	switch v := this.(type) {
	case goja.String:
		n = float64(v.Length())
	case *goja.Object:
		l := v.Get("length")
		if l == nil {
			return
		}
		n = l.ToFloat()
	default:
		return
	}
	if n > MaxBuiltinElements {
		m.throwRange("%s: length %.0f is over the rules' limit of %d elements per built-in call", fn, n, MaxBuiltinElements)
	}
}

// lengthOf is an array-like's length (0 for anything else).
func (m *vm) lengthOf(v goja.Value) float64 {
	o, ok := v.(*goja.Object)
	if !ok {
		return 0
	}
	if l := o.Get("length"); l != nil {
		if n := l.ToFloat(); n > 0 {
			return n
		}
	}
	return 0
}

func (m *vm) checkCount(fn string, n float64) {
	if n > MaxBuiltinElements {
		m.throwRange("%s: %.0f elements is over the rules' limit of %d elements per built-in call", fn, n, MaxBuiltinElements)
	}
}

// countFlat adds to n the indexes flat(depth) would visit, throwing once
// they pass the cap, so it costs at most the cap's worth of reads.
func (m *vm) countFlat(o *goja.Object, depth float64, n *float64) {
	l := m.lengthOf(o)
	*n += l
	m.checkCount("Array.prototype.flat", *n)
	if depth < 1 {
		return
	}
	for i := 0; i < int(l); i++ {
		if el, ok := o.Get(strconv.Itoa(i)).(*goja.Object); ok && el.ClassName() == "Array" {
			m.countFlat(el, depth-1, n)
		}
	}
}

// join converts the elements itself (holes, undefined and null to "",
// anything else by ToString, so an object's toString runs once, as the
// spec has it) and checks the total before the original joins the
// strings. Counting primitive elements alone would miss an object whose
// toString returns one long string many times over.
func (m *vm) join(c goja.FunctionCall, orig jsFunc) goja.Value {
	const fn = "Array.prototype.join"
	m.checkLength(fn, c.This)
	o := c.This.ToObject(m.rt)
	n := int(o.Get("length").ToInteger())
	sep := m.rt.ToValue(",")
	if s := c.Argument(0); !goja.IsUndefined(s) {
		sep = jsString(m.rt, s)
	}
	total := float64(max(n-1, 0)) * float64(sep.(goja.String).Length())
	parts := make([]any, n)
	for i := range n {
		el := o.Get(strconv.Itoa(i))
		if el == nil || goja.IsUndefined(el) || goja.IsNull(el) {
			parts[i] = ""
			continue
		}
		str := jsString(m.rt, el)
		total += float64(str.Length())
		m.checkString(fn, total)
		parts[i] = str
	}
	m.checkString(fn, total)
	return orig(goja.FunctionCall{This: m.rt.NewArray(parts...), Arguments: []goja.Value{sep}})
}

// toLocaleString is Array.prototype.toLocaleString with the same check as
// join: each element's toLocaleString, then the strings joined by ",".
func (m *vm) toLocaleString(c goja.FunctionCall) goja.Value {
	const fn = "Array.prototype.toLocaleString"
	m.checkLength(fn, c.This)
	o := c.This.ToObject(m.rt)
	n := int(o.Get("length").ToInteger())
	var (
		b     goja.StringBuilder
		total float64
	)
	for i := range n {
		if i > 0 {
			b.WriteUTF8String(",")
			total++
		}
		el := o.Get(strconv.Itoa(i))
		if el == nil || goja.IsUndefined(el) || goja.IsNull(el) {
			continue
		}
		method, ok := goja.AssertFunction(el.ToObject(m.rt).Get("toLocaleString"))
		if !ok {
			panic(m.rt.NewTypeError("toLocaleString is not a function"))
		}
		v, err := method(el)
		if err != nil {
			panic(err)
		}
		str := jsString(m.rt, v)
		total += float64(str.Length())
		m.checkString(fn, total)
		b.WriteString(str)
	}
	return b.String()
}

// checkReplace bounds what replace and replaceAll build when the
// replacement is a string: each match adds the replacement, whose $&, $`,
// $' and $n patterns can each insert up to the whole subject. A function
// replacement is JS, run under the deadline and the memory watchdog.
//
// The cheap bound (every position a match, every pattern the whole
// subject) settles ordinary texts. Above it, a string pattern's matches are
// counted, and a global regexp is run through exec once more, adding up
// each match's substitution — the exact size — and throwing as soon as it
// passes the cap (goja's replace would find every match before building
// anything). lastIndex starts at 0 and ends at 0 either way. A single
// regexp replacement keeps the cheap bound: running a sticky regexp twice
// would move its lastIndex.
func (m *vm) checkReplace(fn string, all bool, c goja.FunctionCall) {
	if _, isFn := goja.AssertFunction(c.Argument(1)); isFn {
		return
	}
	subject := thisString(m.rt, c)
	t := subject.Length()
	rep := c.Argument(1).String()
	pat := c.Argument(0)
	rx, isRegexp := pat.(*goja.Object)
	isRegexp = isRegexp && isSet(rx.GetSymbol(goja.SymReplace))
	global := all
	if isRegexp {
		global = strings.Contains(rx.Get("flags").String(), "g")
	}
	matches := 1.0
	if global {
		matches = float64(t + 1)
	}
	tooLong := func(total float64) {
		if total > MaxBuiltinString {
			m.throwRange("%s: a result of %.0f characters or more is over the rules' limit of %d", fn, total, MaxBuiltinString)
		}
	}
	perMatch := float64(len(rep)) + float64(strings.Count(rep, "$"))*float64(t)
	if float64(t)+matches*perMatch <= MaxBuiltinString {
		return
	}
	switch {
	case !isRegexp:
		p := pat.String()
		n := strings.Count(subject.String(), p)
		if !all {
			n = min(n, 1)
		}
		if !strings.Contains(rep, "$`") && !strings.Contains(rep, "$'") {
			// Then the substitution does not depend on where the match is.
			perMatch = float64(substitutionLen(rep, []goja.Value{m.rt.ToValue(p), m.rt.ToValue(0), subject}))
		}
		tooLong(float64(t) + float64(n)*perMatch)
	case !global:
		tooLong(float64(t) + perMatch)
	default:
		exec, ok := goja.AssertFunction(rx.Get("exec"))
		if !ok {
			return // goja's replace throws its own TypeError
		}
		total := float64(t)
		_ = rx.Set("lastIndex", 0)
		for {
			res, err := exec(rx, subject)
			if err != nil {
				panic(err)
			}
			o, ok := res.(*goja.Object)
			if !ok {
				break
			}
			n := int(o.Get("length").ToInteger())
			args := make([]goja.Value, 0, n+3)
			for i := range n {
				args = append(args, o.Get(strconv.Itoa(i)))
			}
			args = append(args, o.Get("index"), subject)
			if g := o.Get("groups"); isSet(g) {
				args = append(args, g)
			}
			total += float64(substitutionLen(rep, args))
			tooLong(total)
			if matched := args[0].String(); matched == "" {
				// Step over an empty match, as replace does.
				_ = rx.Set("lastIndex", rx.Get("lastIndex").ToInteger()+1)
			}
		}
		_ = rx.Set("lastIndex", 0)
	}
}

// substitutionLen is an upper bound of the length of GetSubstitution (the
// expansion of a replacement string, ECMA-262 22.1.3.19.1) for one match,
// given the arguments a replace function gets: match, captures…,
// position, string, and the named groups when the regexp has any.
func substitutionLen(rep string, args []goja.Value) int {
	n := len(args)
	var groups *goja.Object
	if n > 0 {
		if o, ok := args[n-1].(*goja.Object); ok {
			groups, n = o, n-1
		}
	}
	if n < 3 {
		return len(rep)
	}
	strLen := len(args[n-1].String())
	position := int(args[n-2].ToInteger())
	matchLen := len(args[0].String())
	captures := args[1 : n-2]
	capLen := func(i int) int { // 1-based
		if v := captures[i-1]; isSet(v) {
			return len(v.String())
		}
		return 0
	}
	size := 0
	for i := 0; i < len(rep); i++ {
		if rep[i] != '$' || i+1 == len(rep) {
			size++
			continue
		}
		switch next := rep[i+1]; {
		case next == '$':
			size++
			i++
		case next == '&':
			size += matchLen
			i++
		case next == '`':
			size += position
			i++
		case next == '\'':
			size += max(strLen-position-matchLen, 0)
			i++
		case next >= '0' && next <= '9':
			d := int(next - '0')
			if i+2 < len(rep) && rep[i+2] >= '0' && rep[i+2] <= '9' {
				if dd := d*10 + int(rep[i+2]-'0'); dd >= 1 && dd <= len(captures) {
					size += capLen(dd)
					i += 2
					continue
				}
			}
			if d >= 1 && d <= len(captures) {
				size += capLen(d)
				i++
			} else {
				size++
			}
		case next == '<' && groups != nil:
			end := strings.IndexByte(rep[i+2:], '>')
			if end < 0 {
				size++
				continue
			}
			if v := groups.Get(rep[i+2 : i+2+end]); isSet(v) {
				size += len(v.String())
			}
			i += 2 + end
		default:
			size++
		}
	}
	return size
}

// wrapStringify makes JSON.stringify count what it writes, through a
// replacer (the rule's own, if it gave one, runs first), and throw once
// the output would pass MaxBuiltinString: a value that holds one long
// string many times serialises far larger than it weighs in memory.
func (m *vm) wrapStringify(jsonObj *goja.Object) error {
	orig, err := nativeMethod(jsonObj, "stringify")
	if err != nil {
		return err
	}
	return redefine(m.rt, jsonObj, "stringify", func(c goja.FunctionCall) goja.Value {
		replacer := c.Argument(1)
		userFn, _ := goja.AssertFunction(replacer)
		// A property list (an array replacer) is goja's to apply: the
		// counting runs first as a dry pass over every key — an upper bound
		// of what the list lets through — writing null for each primitive,
		// so the pass itself builds next to nothing.
		propertyList := false
		if o, ok := replacer.(*goja.Object); ok && userFn == nil {
			propertyList = o.ClassName() == "Array"
		}
		gap := 0.0
		if sp := c.Argument(2); !goja.IsUndefined(sp) {
			if s, ok := sp.Export().(string); ok {
				gap = float64(min(len(s), 10))
			} else {
				gap = min(max(sp.ToFloat(), 0), 10)
			}
		}
		var total float64
		counting := m.rt.ToValue(func(rc goja.FunctionCall) goja.Value {
			m.stopIfPastDeadline() // stringify walks the value natively
			v := rc.Argument(1)
			if userFn != nil {
				var err error
				if v, err = userFn(rc.This, rc.Arguments...); err != nil {
					panic(err)
				}
			}
			// Key, quotes and punctuation, and indentation up to a depth of
			// 8 (an estimate: the replacer does not see the depth).
			total += float64(len(rc.Argument(0).String())) + 4 + gap*8
			if s, ok := v.Export().(string); ok {
				total += float64(len(s))
			}
			m.checkString("JSON.stringify", total)
			if _, isObj := v.(*goja.Object); propertyList && !isObj {
				return goja.Null()
			}
			return v
		})
		args := []goja.Value{c.Argument(0), counting, c.Argument(2)}
		if !propertyList {
			return orig(goja.FunctionCall{This: c.This, Arguments: args})
		}
		orig(goja.FunctionCall{This: c.This, Arguments: args})
		return orig(c)
	})
}

// matchBounded runs exec or test with the regexp's match timeout set to
// what is left of the deadline.
//
// goja reads a regexp2 timeout as "no match". Past the deadline that is
// harmless: the interrupt is pending and cuts the rule at its next
// instruction. Before it, the answer may be wrong: regexp2 measures time
// by a clock goroutine that can fall behind on a loaded machine and end a
// match early. So a slow "no match" from regexp2 with time left is run
// again (from the same lastIndex) with what is left; a real one costs the
// same again, within the deadline.
//
// Every regexp call of a rule comes through here, so it reads the
// deadline once per match and the clock once (twice on regexp2). The
// time measured includes boundRegexp, which compiles the regexp2 program
// on a pattern's first match from lastIndex > 0: a "no match" slowed by
// that is run once more, at no cost to the answer.
func (m *vm) matchBounded(c goja.FunctionCall, orig jsFunc) goja.Value {
	obj, _ := c.This.(*goja.Object)
	for {
		m.mu.Lock()
		running, deadline := m.running, m.deadline
		m.mu.Unlock()
		start := time.Now()
		// Built-ins like split and replace call exec in a native loop that
		// no interrupt reaches: past the deadline, stop the loop.
		if running && !start.Before(deadline) {
			m.onDeadline()
			m.throwGo(m.v.interrupt)
		}
		remaining := MaxTimeout
		if running {
			remaining = deadline.Sub(start)
		}
		var lastIndex goja.Value
		if obj != nil {
			lastIndex = obj.Get("lastIndex")
		}
		onRegexp2 := m.boundRegexp(obj, lastIndex, remaining)
		res := orig(c)
		if !onRegexp2 {
			// Go's regexp runs in linear time; a call past its deadline is
			// stopped by the timer, or above by the next exec of a loop.
			return res
		}
		end := time.Now()
		if running && !end.Before(deadline) {
			m.onDeadline() // the timer may not have fired yet
		}
		if res.ToBoolean() || end.Sub(start) < time.Millisecond || !running || !end.Before(deadline) {
			return res
		}
		_ = obj.Set("lastIndex", lastIndex)
	}
}

// boundRegexp gives the regexp obj a match timeout of remaining (what is
// left of the running call's deadline). goja runs patterns Go's regexp
// cannot (lookaround, backreferences) on dlclark/regexp2, a backtracking
// engine whose only brake is Regexp.MatchTimeout, fixed when goja compiles
// the pattern and not reachable through goja's API. So this reaches it by
// reflection: Object.self (*regexpObject) .pattern (*regexpPattern)
// .regexp2Wrapper (*regexp2Wrapper) .rx (*regexp2.Regexp), along field
// indices resolved once (resolveRegexpFields). A regexp literal's compiled
// program is shared by every runtime of the rule, so the wrapper (one per
// RegExp object, owned by this runtime) gets a private copy of the Regexp
// with the timeout set, never a write to the shared one; the copies are
// remembered per runtime (vm.privateRx, bounded), so later calls only set the
// timeout. TestRegexpTimeoutReachesGoja fails if a goja upgrade moves
// these fields.
//
// lastIndex is obj's, read by the caller. It reports whether the match
// will run on regexp2: the pattern needs it, or matching starts past
// index 0.
func (m *vm) boundRegexp(obj *goja.Object, lastIndex goja.Value, remaining time.Duration) bool {
	f := regexpFields()
	if obj == nil || f == nil {
		return false
	}
	remaining = max(remaining, time.Nanosecond)
	pat := regexpPattern(obj)
	if !pat.IsValid() {
		return false
	}
	onRegexp2 := true
	if re2 := pat.Field(f.goRegexp); !re2.IsNil() {
		onRegexp2 = lastIndex != nil && lastIndex.ToInteger() != 0
	}
	wrapperField := pat.Field(f.wrapper)
	wp := (*unsafe.Pointer)(unsafe.Pointer(wrapperField.UnsafeAddr()))
	if *wp == nil {
		// The pattern runs on Go's linear-time regexp, but goja switches to
		// regexp2 when matching from lastIndex > 0 and would compile it
		// then, without a timeout. Compile it now, as goja does.
		rx := compileLikeGoja(pat)
		if rx == nil {
			return false
		}
		w := reflect.New(f.wrapperType)
		*(**regexp2.Regexp)(unsafe.Pointer(w.Elem().Field(f.rx).UnsafeAddr())) = rx
		*wp = w.UnsafePointer()
		m.remember(rx, rx) // compiled for this object alone
	}
	p := (**regexp2.Regexp)(unsafe.Pointer(wrapperField.Elem().Field(f.rx).UnsafeAddr()))
	if *p == nil {
		return false
	}
	private, ok := m.privateRx[*p]
	if !ok {
		cp := **p // the Regexp holds only pointers to its shared, read-only parts
		private = &cp
		m.remember(*p, private)
	}
	private.MatchTimeout = remaining
	*p = private
	return onRegexp2
}

// maxPrivateRx bounds vm.privateRx (entries: originals and their copies):
// a rule that builds a new RegExp per event from varying text would
// otherwise keep every program it ever matched with alive. Forgetting
// only costs a new copy on the next match of a forgotten one; a rule's
// literals and the patterns it compiles once stay well below it.
const maxPrivateRx = 64

// remember notes that matches of from (shared or private) run on
// private, a Regexp only this runtime holds.
func (m *vm) remember(from, private *regexp2.Regexp) {
	if m.privateRx == nil || len(m.privateRx) >= maxPrivateRx {
		m.privateRx = make(map[*regexp2.Regexp]*regexp2.Regexp)
	}
	m.privateRx[from] = private
	m.privateRx[private] = private
}

// rxFields are the indices of the fields boundRegexp follows inside goja.
type rxFields struct {
	self        int          // goja.Object.self (an interface)
	regexpObj   reflect.Type // *goja.regexpObject, the self of a RegExp
	pattern     int          // regexpObject.pattern (*regexpPattern)
	goRegexp    int          // regexpPattern.regexpWrapper (a pointer)
	wrapper     int          // regexpPattern.regexp2Wrapper (*regexp2Wrapper)
	wrapperType reflect.Type // regexp2Wrapper
	rx          int          // regexp2Wrapper.rx (*regexp2.Regexp)
	src         int          // regexpPattern.src (string)
	// regexpPattern's flags compileLikeGoja reads (bool).
	multiline, dotAll, ignoreCase, unicode int
}

var (
	rxFieldsOnce sync.Once
	rxFieldsSet  *rxFields
)

// resolveRegexpFields finds the field paths once per process, from a
// RegExp made in the first runtime prepared (installLimits, before any
// rule runs: never inside a handler's deadline).
func resolveRegexpFields(rt *goja.Runtime) {
	rxFieldsOnce.Do(func() { rxFieldsSet = findRegexpFields(rt) })
}

// regexpFields are the field paths resolveRegexpFields found; nil if goja's
// types no longer have that shape (regexps then run with the MaxTimeout
// backstop alone). Every runtime resolves them before it runs a rule.
func regexpFields() *rxFields { return rxFieldsSet }

func findRegexpFields(rt *goja.Runtime) *rxFields {
	v, err := rt.RunString(`/(?=a)a/`) // on regexp2 from the start
	obj, ok := v.(*goja.Object)
	if err != nil || !ok {
		return nil
	}
	field := func(t reflect.Type, name string, kind reflect.Kind) (int, bool) {
		if t.Kind() != reflect.Struct {
			return 0, false
		}
		sf, ok := t.FieldByName(name)
		if !ok || len(sf.Index) != 1 || sf.Type.Kind() != kind {
			return 0, false
		}
		return sf.Index[0], true
	}
	var f rxFields
	var oks [10]bool
	objT := reflect.TypeFor[goja.Object]()
	f.self, oks[0] = field(objT, "self", reflect.Interface)
	if !oks[0] {
		return nil
	}
	self := reflect.ValueOf(obj).Elem().Field(f.self)
	if self.IsNil() || self.Elem().Kind() != reflect.Pointer {
		return nil
	}
	f.regexpObj = self.Elem().Type()
	f.pattern, oks[1] = field(f.regexpObj.Elem(), "pattern", reflect.Pointer)
	if !oks[1] {
		return nil
	}
	patT := f.regexpObj.Elem().Field(f.pattern).Type.Elem()
	f.goRegexp, oks[2] = field(patT, "regexpWrapper", reflect.Pointer)
	f.wrapper, oks[3] = field(patT, "regexp2Wrapper", reflect.Pointer)
	f.src, oks[4] = field(patT, "src", reflect.String)
	f.multiline, oks[5] = field(patT, "multiline", reflect.Bool)
	f.dotAll, oks[6] = field(patT, "dotAll", reflect.Bool)
	f.ignoreCase, oks[7] = field(patT, "ignoreCase", reflect.Bool)
	f.unicode, oks[8] = field(patT, "unicode", reflect.Bool)
	if !oks[3] {
		return nil
	}
	f.wrapperType = patT.Field(f.wrapper).Type.Elem()
	f.rx, oks[9] = field(f.wrapperType, "rx", reflect.Pointer)
	for _, ok := range oks {
		if !ok {
			return nil
		}
	}
	if f.wrapperType.Field(f.rx).Type != reflect.TypeFor[*regexp2.Regexp]() {
		return nil
	}
	return &f
}

// regexpPattern is the *regexpPattern of a RegExp object, dereferenced
// and addressable, or the zero Value.
func regexpPattern(obj *goja.Object) reflect.Value {
	f := regexpFields()
	if f == nil {
		return reflect.Value{}
	}
	self := reflect.ValueOf(obj).Elem().Field(f.self)
	if self.IsNil() {
		return reflect.Value{}
	}
	impl := self.Elem()
	if impl.Type() != f.regexpObj || impl.IsNil() {
		return reflect.Value{}
	}
	pat := impl.Elem().Field(f.pattern)
	if pat.IsNil() {
		return reflect.Value{}
	}
	return pat.Elem()
}

// compileLikeGoja compiles the pattern with the options goja's
// compileRegexp2 uses.
func compileLikeGoja(pat reflect.Value) *regexp2.Regexp {
	f := regexpFields()
	opts := regexp2.ECMAScript
	if pat.Field(f.multiline).Bool() {
		opts |= regexp2.Multiline
	}
	if pat.Field(f.dotAll).Bool() {
		opts |= regexp2.Singleline
	}
	if pat.Field(f.ignoreCase).Bool() {
		opts |= regexp2.IgnoreCase
	}
	if pat.Field(f.unicode).Bool() {
		opts |= regexp2.Unicode
	}
	rx, err := regexp2.Compile(pat.Field(f.src).String(), opts)
	if err != nil {
		return nil
	}
	return rx
}
