package rules

import (
	"encoding/base64"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"

	"github.com/wildcathub/wildcat/core/event"
)

// msg is the Event as the rule sees it: its JSON rendering — the names of
// its json tags, omitempty fields absent, times as RFC 3339 strings, bytes
// as base64 — read-only (writes are ignored, and throw a TypeError in
// strict mode).
//
// It is built lazily over the Go value instead of by JSON.parse: a rule
// reads a handful of fields, and parsing and deep-freezing the whole
// rendering per call cost about 140 µs, against a goal of 10 µs for the
// whole rule stage. Only the properties a rule touches are converted, once
// per call. The event is shared read-only by every runtime the call uses;
// JS values never cross runtimes.

// jsonField is one field as encoding/json renders it.
type jsonField struct {
	name      string
	index     int
	omitEmpty bool
}

type structInfo struct {
	fields []jsonField
	byName map[string]int
}

var structInfos sync.Map // reflect.Type → *structInfo

// infoOf reads t's json tags the way encoding/json does (for the shapes
// Event uses: no embedded structs, no string option).
func infoOf(t reflect.Type) *structInfo {
	if si, ok := structInfos.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byName: map[string]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		si.byName[name] = len(si.fields)
		si.fields = append(si.fields, jsonField{name: name, index: i, omitEmpty: strings.Contains(","+opts+",", ",omitempty,")})
	}
	structInfos.Store(t, si)
	return si
}

// isEmpty is encoding/json's omitempty test.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

var timeType = reflect.TypeFor[time.Time]()

// message returns msg for ev in this runtime.
func (m *vm) message(ev *event.Event) goja.Value {
	return m.toJS(reflect.ValueOf(ev))
}

func (m *vm) toJS(v reflect.Value) goja.Value {
	rt := m.rt
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return goja.Null()
		}
		return m.toJS(v.Elem())
	case reflect.Struct:
		if v.Type() == timeType {
			return rt.ToValue(v.Interface().(time.Time).Format(time.RFC3339Nano))
		}
		return rt.NewDynamicObject(&jsStruct{m: m, v: v, info: infoOf(v.Type())})
	case reflect.String:
		return rt.ToValue(v.String())
	case reflect.Bool:
		return rt.ToValue(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rt.ToValue(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rt.ToValue(v.Uint())
	case reflect.Float32:
		// As JSON prints it: the shortest decimal that is this float32.
		f, _ := strconv.ParseFloat(strconv.FormatFloat(v.Float(), 'g', -1, 32), 64)
		return rt.ToValue(f)
	case reflect.Float64:
		return rt.ToValue(v.Float())
	case reflect.Slice:
		if v.IsNil() {
			return goja.Null()
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return rt.ToValue(base64.StdEncoding.EncodeToString(v.Bytes()))
		}
		return rt.NewDynamicArray(&jsSlice{m: m, v: v})
	case reflect.Map:
		if v.IsNil() {
			return goja.Null()
		}
		return rt.NewDynamicObject(&jsMap{m: m, v: v})
	}
	return goja.Undefined()
}

// jsStruct is a read-only struct with its JSON field names. Nested values
// are converted once, so msg.message === msg.message.
type jsStruct struct {
	m    *vm
	v    reflect.Value
	info *structInfo
	// objs are the objects made so far, by field: the first two in place
	// (a rule reads one or two of a struct's, msg.message, m.quoted), any
	// more in more — no allocation of their own for the common case.
	objs [2]fieldObj
	more []fieldObj
}

type fieldObj struct {
	field int
	obj   goja.Value
}

// made is the object made for field i before, or nil.
func (s *jsStruct) made(i int) goja.Value {
	for _, o := range s.objs {
		if o.obj != nil && o.field == i {
			return o.obj
		}
	}
	for _, o := range s.more {
		if o.field == i {
			return o.obj
		}
	}
	return nil
}

func (s *jsStruct) remember(i int, obj goja.Value) {
	for j := range s.objs {
		if s.objs[j].obj == nil {
			s.objs[j] = fieldObj{i, obj}
			return
		}
	}
	s.more = append(s.more, fieldObj{i, obj})
}

func (s *jsStruct) Get(key string) goja.Value {
	i, ok := s.info.byName[key]
	if !ok {
		return nil
	}
	if obj := s.made(i); obj != nil {
		return obj
	}
	f := s.info.fields[i]
	fv := s.v.Field(f.index)
	if f.omitEmpty && isEmpty(fv) {
		return nil
	}
	val := s.m.toJS(fv)
	if _, isObj := val.(*goja.Object); isObj {
		s.remember(i, val)
	}
	return val
}

func (s *jsStruct) Has(key string) bool         { return s.Get(key) != nil }
func (s *jsStruct) Set(string, goja.Value) bool { return false }
func (s *jsStruct) Delete(string) bool          { return false }
func (s *jsStruct) Keys() []string {
	keys := make([]string, 0, len(s.info.fields))
	for _, f := range s.info.fields {
		if !f.omitEmpty || !isEmpty(s.v.Field(f.index)) {
			keys = append(keys, f.name)
		}
	}
	return keys
}

type jsSlice struct {
	m     *vm
	v     reflect.Value
	cache []goja.Value
}

func (s *jsSlice) Len() int { return s.v.Len() }
func (s *jsSlice) Get(i int) goja.Value {
	if i < 0 || i >= s.v.Len() {
		return nil
	}
	if s.cache == nil {
		s.cache = make([]goja.Value, s.v.Len())
	}
	if s.cache[i] == nil {
		s.cache[i] = s.m.toJS(s.v.Index(i))
	}
	return s.cache[i]
}
func (s *jsSlice) Set(int, goja.Value) bool { return false }
func (s *jsSlice) SetLen(int) bool          { return false }

// jsMap is a read-only map with string keys (annotations).
type jsMap struct {
	m *vm
	v reflect.Value
}

func (j *jsMap) Get(key string) goja.Value {
	val := j.v.MapIndex(reflect.ValueOf(key).Convert(j.v.Type().Key()))
	if !val.IsValid() {
		return nil
	}
	return j.m.toJS(val)
}
func (j *jsMap) Has(key string) bool         { return j.Get(key) != nil }
func (j *jsMap) Set(string, goja.Value) bool { return false }
func (j *jsMap) Delete(string) bool          { return false }
func (j *jsMap) Keys() []string {
	keys := make([]string, 0, j.v.Len())
	for _, k := range j.v.MapKeys() {
		keys = append(keys, k.String())
	}
	return keys
}
