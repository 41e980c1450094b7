package rules

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
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
	// built-ins walk every index natively at 100–500 ns each, so the cap
	// keeps one call within tens of milliseconds.
	MaxBuiltinElements = 1 << 17
	// MaxBuiltinString is the longest string (in UTF-16 units) that
	// repeat, padStart, padEnd, concat, join and JSON.stringify build in one
	// call: far above any WhatsApp text (65,536 characters) or kv value
	// (64 KiB), and small enough that building it stays within milliseconds.
	MaxBuiltinString = 1 << 20
	// MaxBuiltinBytes is the largest ArrayBuffer or typed array a rule
	// can allocate in one call.
	MaxBuiltinBytes = 16 << 20
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
			m.boundRegexp(c.This)
			res := orig(c)
			// A match cut by its timeout answers "no match"; the deadline
			// has passed, so interrupt before the rule acts on that answer.
			m.onDeadline()
			return res
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
		if err := m.wrap(strProto, name, func(c goja.FunctionCall) {
			m.checkString("String.prototype."+name, c.Argument(0).ToFloat())
		}); err != nil {
			return err
		}
	}
	if err := m.wrap(strProto, "concat", func(c goja.FunctionCall) {
		total := float64(thisString(rt, c).Length())
		for _, a := range c.Arguments {
			if s, ok := a.Export().(string); ok {
				total += float64(len(s))
			}
		}
		m.checkString("String.prototype.concat", total)
	}); err != nil {
		return err
	}

	arrProto := rt.Get("Array").ToObject(rt).Get("prototype").ToObject(rt)
	names, err := ownNames(rt, arrProto)
	if err != nil {
		return err
	}
	for _, name := range names {
		switch name {
		case "constructor", "length", "push", "pop", "at", "keys", "values", "entries":
			// O(1) or lazy: nothing to bound.
			continue
		}
		if _, ok := goja.AssertFunction(arrProto.Get(name)); !ok {
			continue
		}
		check := func(c goja.FunctionCall) { m.checkLength("Array.prototype."+name, c.This) }
		if name == "join" || name == "toString" || name == "toLocaleString" {
			check = func(c goja.FunctionCall) { m.checkJoin("Array.prototype."+name, c) }
		}
		if err := m.wrap(arrProto, name, check); err != nil {
			return err
		}
	}
	arrCtor := rt.Get("Array").ToObject(rt)
	if err := m.wrap(arrCtor, "from", func(c goja.FunctionCall) {
		if o, ok := c.Argument(0).(*goja.Object); ok {
			m.checkLength("Array.from", o)
		}
	}); err != nil {
		return err
	}

	jsonObj := rt.Get("JSON").ToObject(rt)
	if err := m.wrapStringify(jsonObj); err != nil {
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
	// goja's instanceof does not see through a Proxy to the function it
	// wraps, so the real constructor answers it (the Proxy forwards the get
	// of Symbol.hasInstance to it) as OrdinaryHasInstance would.
	fn, err := rt.RunString(`(function (guard) {
	const isProto = Object.prototype.isPrototypeOf;
	for (const name of ["ArrayBuffer", "SharedArrayBuffer", "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array",
		"Uint16Array", "Int32Array", "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"]) {
		const target = globalThis[name];
		if (typeof target !== "function") continue;
		const per = target.BYTES_PER_ELEMENT || 1;
		Object.defineProperty(target, Symbol.hasInstance, {value: o => isProto.call(target.prototype, o)});
		Object.defineProperty(globalThis, name, {value: new Proxy(target, {
			construct(t, args, nt) { guard(name, per, args[0]); return Reflect.construct(t, args, nt); },
		}), writable: true, configurable: true, enumerable: false});
	}
})`)
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
	orig, err := nativeMethod(obj, name)
	if err != nil {
		return err
	}
	return redefine(m.rt, obj, name, func(c goja.FunctionCall) goja.Value {
		check(c)
		return orig(c)
	})
}

func ownNames(rt *goja.Runtime, obj *goja.Object) ([]string, error) {
	v, err := rt.RunString("Object.getOwnPropertyNames")
	if err != nil {
		return nil, err
	}
	f, _ := goja.AssertFunction(v)
	res, err := f(goja.Undefined(), obj)
	if err != nil {
		return nil, err
	}
	var names []string
	if err := rt.ExportTo(res, &names); err != nil {
		return nil, err
	}
	return names, nil
}

func thisString(rt *goja.Runtime, c goja.FunctionCall) goja.String {
	if goja.IsUndefined(c.This) || goja.IsNull(c.This) {
		panic(rt.NewTypeError("String.prototype method called on null or undefined"))
	}
	s, _ := c.This.ToString().(goja.String)
	if s == nil {
		return rt.ToValue("").(goja.String)
	}
	return s
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
	o, ok := this.(*goja.Object)
	if !ok {
		return // a primitive: strings are bounded by their own length
	}
	if l := o.Get("length"); l != nil {
		if n := l.ToFloat(); n > MaxBuiltinElements {
			m.throwRange("%s: length %.0f is over the rules' limit of %d elements per built-in call", fn, n, MaxBuiltinElements)
		}
	}
}

// checkJoin bounds what join builds from primitive elements. An object
// element becomes a string by calling its toString, which is JS the
// deadline and the memory watchdog already reach.
func (m *vm) checkJoin(fn string, c goja.FunctionCall) {
	m.checkLength(fn, c.This)
	o, ok := c.This.(*goja.Object)
	if !ok {
		return
	}
	n := int(o.Get("length").ToInteger())
	sep := 1.0
	if fn == "Array.prototype.join" {
		if s := c.Argument(0); !goja.IsUndefined(s) {
			sep = float64(len(s.String()))
		}
	}
	total := float64(max(n-1, 0)) * sep
	for i := 0; i < n; i++ {
		if s, ok := o.Get(strconv.Itoa(i)).Export().(string); ok {
			total += float64(len(s))
			if total > MaxBuiltinString {
				break
			}
		}
	}
	m.checkString(fn, total)
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
		if o, ok := replacer.(*goja.Object); ok {
			if _, isFn := goja.AssertFunction(o); !isFn {
				// A property list: keep goja's handling; the output is then
				// bounded only by the memory watchdog.
				return orig(c)
			}
		}
		userFn, _ := goja.AssertFunction(replacer)
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
			return v
		})
		args := []goja.Value{c.Argument(0), counting, c.Argument(2)}
		return orig(goja.FunctionCall{This: c.This, Arguments: args})
	})
}

// boundRegexp gives the regexp this a match timeout ending at the running
// call's deadline. goja runs patterns Go's regexp cannot (lookaround,
// backreferences) on dlclark/regexp2, a backtracking engine whose only
// brake is Regexp.MatchTimeout, fixed when goja compiles the pattern and not
// reachable through goja's API. So this reaches it by reflection:
// Object.self (*regexpObject) .pattern (*regexpPattern) .regexp2Wrapper
// (*regexp2Wrapper) .rx (*regexp2.Regexp). A regexp literal's compiled
// program is shared by every runtime of the rule, so the wrapper (one per
// RegExp object, owned by this runtime) gets a private copy of the
// Regexp with the timeout set, never a write to the shared one.
// TestRegexpTimeoutReachesGoja fails if a goja upgrade moves these fields.
func (m *vm) boundRegexp(this goja.Value) {
	obj, ok := this.(*goja.Object)
	if !ok {
		return
	}
	remaining := time.Hour
	m.mu.Lock()
	if m.running {
		remaining = time.Until(m.deadline)
	}
	m.mu.Unlock()
	remaining = max(remaining, time.Nanosecond)
	pat := regexpPattern(obj)
	if !pat.IsValid() {
		return
	}
	wrapperField := pat.FieldByName("regexp2Wrapper")
	if !wrapperField.IsValid() || wrapperField.Kind() != reflect.Pointer {
		return
	}
	if wrapperField.IsNil() {
		// The pattern runs on Go's linear-time regexp, but goja switches to
		// regexp2 when matching from lastIndex > 0 and would compile it
		// then, without a timeout. Compile it now, as goja does.
		rx := compileLikeGoja(pat)
		if rx == nil {
			return
		}
		w := reflect.New(wrapperField.Type().Elem())
		rxField := w.Elem().FieldByName("rx")
		if !rxField.IsValid() || rxField.Type() != reflect.TypeOf(rx) {
			return
		}
		*(**regexp2.Regexp)(unsafe.Pointer(rxField.UnsafeAddr())) = rx
		*(*unsafe.Pointer)(unsafe.Pointer(wrapperField.UnsafeAddr())) = w.UnsafePointer()
	}
	rxField := wrapperField.Elem().FieldByName("rx")
	if !rxField.IsValid() || rxField.Type() != reflect.TypeOf((*regexp2.Regexp)(nil)) {
		return
	}
	p := (**regexp2.Regexp)(unsafe.Pointer(rxField.UnsafeAddr()))
	if *p == nil {
		return
	}
	private := **p // the Regexp holds only pointers to its shared, read-only parts
	private.MatchTimeout = remaining
	*p = &private
}

// regexpPattern is the *regexpPattern of a RegExp object, dereferenced
// and addressable, or the zero Value.
func regexpPattern(obj *goja.Object) reflect.Value {
	self := reflect.ValueOf(obj).Elem().FieldByName("self")
	if !self.IsValid() || self.Kind() != reflect.Interface || self.IsNil() {
		return reflect.Value{}
	}
	impl := self.Elem()
	if impl.Kind() != reflect.Pointer || impl.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	pat := impl.Elem().FieldByName("pattern")
	if !pat.IsValid() || pat.Kind() != reflect.Pointer || pat.IsNil() {
		return reflect.Value{}
	}
	return pat.Elem()
}

// compileLikeGoja compiles the pattern with the options goja's
// compileRegexp2 uses.
func compileLikeGoja(pat reflect.Value) *regexp2.Regexp {
	flag := func(name string) bool {
		f := pat.FieldByName(name)
		return f.IsValid() && f.Kind() == reflect.Bool && f.Bool()
	}
	src := pat.FieldByName("src")
	if !src.IsValid() || src.Kind() != reflect.String {
		return nil
	}
	opts := regexp2.ECMAScript
	if flag("multiline") {
		opts |= regexp2.Multiline
	}
	if flag("dotAll") {
		opts |= regexp2.Singleline
	}
	if flag("ignoreCase") {
		opts |= regexp2.IgnoreCase
	}
	if flag("unicode") {
		opts |= regexp2.Unicode
	}
	rx, err := regexp2.Compile(src.String(), opts)
	if err != nil {
		return nil
	}
	return rx
}
