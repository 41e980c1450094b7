package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Key describes one configuration key, derived from the Config struct.
type Key struct {
	Name    string // dotted key as written in config.yaml, e.g. "http.addr"
	Env     string // environment variable, e.g. "WILDCAT_HTTP_ADDR"; empty when not settable from env
	Flag    string // command-line flag without dashes, e.g. "http-addr"; empty when none
	Default string // default value as text
	Doc     string
	Type    string // "string", "integer", "boolean", "duration" or "list"/"map" for structured keys

	kind reflect.Kind
	typ  reflect.Type
}

// EnvPrefix starts every environment variable wildcatd reads.
const EnvPrefix = "WILDCAT_"

var durationType = reflect.TypeOf(time.Duration(0))

// Keys lists every configuration key in declaration order.
func Keys() []Key {
	def := Defaults()
	var keys []Key
	collectKeys(reflect.ValueOf(def), "", &keys)
	return keys
}

func collectKeys(v reflect.Value, prefix string, out *[]Key) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" || tag == "-" {
			continue
		}
		name := tag
		if prefix != "" {
			name = prefix + "." + tag
		}
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			collectKeys(fv, name, out)
			continue
		}
		k := Key{Name: name, Doc: f.Tag.Get("doc"), kind: f.Type.Kind(), typ: f.Type}
		switch {
		case f.Type == durationType:
			k.Type = "duration"
			k.Default = fv.Interface().(time.Duration).String()
		case f.Type.Kind() == reflect.String:
			k.Type = "string"
			k.Default = fv.String()
		case f.Type.Kind() == reflect.Bool:
			k.Type = "boolean"
			k.Default = fmt.Sprint(fv.Bool())
		case f.Type.Kind() >= reflect.Int && f.Type.Kind() <= reflect.Int64:
			k.Type = "integer"
			k.Default = fmt.Sprint(fv.Int())
		case f.Type.Kind() == reflect.Slice:
			k.Type = "list"
		case f.Type.Kind() == reflect.Map:
			k.Type = "map"
		default:
			k.Type = f.Type.String()
		}
		// Scalars and lists of strings (comma-separated) can be written as
		// one env var or flag; other lists and maps live in the file.
		if k.Type == "string" || k.Type == "boolean" || k.Type == "integer" || k.Type == "duration" || k.stringList() {
			k.Env = EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, ".", "_"))
			k.Flag = strings.NewReplacer(".", "-", "_", "-").Replace(name)
		}
		*out = append(*out, k)
	}
}

// MarkdownTable renders the configuration reference kept in README.md.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| Key | Environment | Flag | Default | Description |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, k := range Keys() {
		env, flag, def := "—", "—", "—"
		if k.Env != "" {
			env = "`" + k.Env + "`"
		}
		if k.Flag != "" {
			flag = "`--" + k.Flag + "`"
		}
		if k.Default != "" {
			def = "`" + k.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k.Name, env, flag, def, k.Doc)
	}
	return b.String()
}

// stringList: a list of strings, written in the environment or a flag as
// comma-separated values.
func (k Key) stringList() bool {
	return k.typ != nil && k.typ.Kind() == reflect.Slice && k.typ.Elem().Kind() == reflect.String
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty items: "a, b," is [a b].
func splitList(v string) []string {
	out := []string{}
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
