package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// DefaultPath is read when neither --config nor WILDCAT_CONFIG names a file.
// It may be absent: the defaults run as they are.
const DefaultPath = "config.yaml"

// PathEnv names the config file when --config is not given.
const PathEnv = EnvPrefix + "CONFIG"

// Source says where Load reads from. Passing the environment and flags in,
// rather than reading globals, keeps tests hermetic and parallel.
type Source struct {
	// Path of the YAML file. Empty means DefaultPath, which may be missing.
	Path string
	// Environ is the process environment as KEY=value pairs (os.Environ()).
	Environ []string
	// Flags are parsed command-line flags from RegisterFlags; only flags the
	// user set override anything.
	Flags *pflag.FlagSet
}

// Loaded is a validated configuration plus what the operator may want to know.
type Loaded struct {
	Config
	// Path is the file that was read, or "" when none was.
	Path string
	// Warnings are harmless oddities, e.g. an unknown WILDCAT_ variable.
	Warnings []string
}

// envExtras are WILDCAT_ variables that are not configuration keys.
var envExtras = map[string]bool{PathEnv: true}

// ResolvePath picks the config file: the --config flag, else WILDCAT_CONFIG,
// else "" (meaning DefaultPath if it exists).
func ResolvePath(flagValue string, environ []string) string {
	if flagValue != "" {
		return flagValue
	}
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, PathEnv+"="); ok {
			return v
		}
	}
	return ""
}

// RegisterFlags adds --config and one flag per scalar key to fs.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "configuration file (default "+DefaultPath+", or $"+PathEnv+")")
	for _, k := range Keys() {
		if k.Flag == "" {
			continue
		}
		switch k.Type {
		case "duration":
			d, _ := time.ParseDuration(k.Default)
			fs.Duration(k.Flag, d, k.Doc)
		case "integer":
			var n int64
			fmt.Sscan(k.Default, &n)
			fs.Int64(k.Flag, n, k.Doc)
		case "boolean":
			fs.Bool(k.Flag, k.Default == "true", k.Doc)
		case "list":
			// A plain string, split on commas when read: pflag's own
			// string slices would parse quotes as CSV.
			fs.String(k.Flag, "", k.Doc+" (comma-separated)")
		default:
			fs.String(k.Flag, k.Default, k.Doc)
		}
	}
}

// Load layers defaults < file < environment < flags, then validates what
// this package can check on its own (see Validate). Every failure is an
// *Error naming the key, so the caller can exit 2 with one line. A command
// that runs the configuration loads it with configcheck.Load, which adds
// the checks that need the other packages.
func Load(src Source) (*Loaded, error) {
	keys := Keys()
	byEnv := make(map[string]string, len(keys))
	byFlag := make(map[string]string, len(keys))
	lists := map[string]bool{}
	for _, k := range keys {
		lists[k.Name] = k.stringList()
		if k.Env != "" {
			byEnv[k.Env] = k.Name
		}
		if k.Flag != "" {
			byFlag[k.Flag] = k.Name
		}
	}

	out := &Loaded{}
	ko := koanf.New(".")

	path, explicit := src.Path, src.Path != ""
	if !explicit {
		path = DefaultPath
	}
	switch _, err := os.Stat(path); {
	case err == nil:
		if err := ko.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, &Error{Key: path, Problem: cleanYAMLError(err)}
		}
		out.Path = path
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		// No file at the default path: the defaults are a working setup.
	default:
		return nil, &Error{Key: path, Problem: "cannot read configuration file: " + cleanPathError(err)}
	}

	err := ko.Load(env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return src.Environ },
		TransformFunc: func(k, v string) (string, any) {
			if key, ok := byEnv[k]; ok {
				if lists[key] {
					return key, splitList(v)
				}
				return key, v
			}
			if !envExtras[k] && !strings.HasPrefix(k, EnvPrefix+"TEST_") {
				out.Warnings = append(out.Warnings, fmt.Sprintf("environment variable %s is not a configuration key; ignored", k))
			}
			return "", nil
		},
	}), nil)
	if err != nil {
		return nil, fmt.Errorf("read environment: %w", err)
	}

	if src.Flags != nil {
		err := ko.Load(posflag.ProviderWithFlag(src.Flags, ".", ko, func(f *pflag.Flag) (string, any) {
			key, ok := byFlag[f.Name]
			if !ok || !f.Changed {
				return "", nil
			}
			if lists[key] {
				return key, splitList(f.Value.String())
			}
			return key, posflag.FlagVal(src.Flags, f)
		}), nil)
		if err != nil {
			return nil, fmt.Errorf("read flags: %w", err)
		}
	}

	out.Config = Defaults()
	md := &mapstructure.Metadata{}
	err = ko.UnmarshalWithConf("", &out.Config, koanf.UnmarshalConf{
		Tag: "koanf",
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook: mapstructure.ComposeDecodeHookFunc(
				durationHook,
				mapstructure.StringToTimeDurationHookFunc(),
			),
			WeaklyTypedInput: true,
			Metadata:         md,
			TagName:          "koanf",
		},
	})
	if err != nil {
		return nil, decodeError(err)
	}
	if len(md.Unused) > 0 {
		sort.Strings(md.Unused)
		key := mapEntryKey(md.Unused[0])
		if why, ok := removedKeys[key]; ok {
			return nil, &Error{Key: key, Problem: "was removed: " + why}
		}
		return nil, &Error{Key: key, Problem: "unknown key" + suggestKey(key, keys)}
	}
	if err := out.Config.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// durationHook refuses bare numbers for durations: YAML "timeout: 15" would
// otherwise silently mean 15 nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		return data, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return nil, fmt.Errorf("a duration needs a unit, e.g. %q", "15s")
	}
	return data, nil
}

// decodeError turns mapstructure's joined errors into one *Error for the
// first offending key.
func decodeError(err error) error {
	var de *mapstructure.DecodeError
	if !errors.As(err, &de) {
		return &Error{Problem: err.Error()}
	}
	inner := de.Unwrap()
	// A DecodeError may wrap another for a nested key; the innermost names it.
	var nested *mapstructure.DecodeError
	for errors.As(inner, &nested) {
		de, inner = nested, nested.Unwrap()
	}
	problem := inner.Error()
	var ute *mapstructure.UnconvertibleTypeError
	var pe *mapstructure.ParseError
	switch {
	case errors.As(inner, &ute):
		problem = fmt.Sprintf("expected %s, got %s", describeType(ute.Expected.Type()), describeValue(ute.Value))
	case errors.As(inner, &pe):
		problem = fmt.Sprintf("expected %s, got %s", describeType(pe.Expected.Type()), describeValue(pe.Value))
	case strings.HasPrefix(problem, "expected a map or struct"):
		problem = "expected a mapping of keys" + strings.TrimPrefix(problem, "expected a map or struct")
	}
	return &Error{Key: mapEntryKey(de.Name()), Problem: problem}
}

// pluginEntryRE matches the decoder's name for an entry of the plugins map.
var pluginEntryRE = regexp.MustCompile(`^plugins\[([^\]]+)\]`)

// mapEntryKey writes a plugins entry as config.yaml and the validation
// errors do: plugins[echo].timeout becomes plugins.echo.timeout.
func mapEntryKey(name string) string {
	// An all-digit "name" is a list index: plugins written as a list.
	if m := pluginEntryRE.FindStringSubmatch(name); m != nil && strings.Trim(m[1], "0123456789") != "" {
		return "plugins." + m[1] + name[len(m[0]):]
	}
	return name
}

func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 15s"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Map, t.Kind() == reflect.Struct:
		return "a mapping of keys"
	}
	return t.String()
}

func describeValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case string:
		return fmt.Sprintf("%q", v)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	case bool:
		return fmt.Sprint(v)
	default:
		return fmt.Sprintf("%v", v)
	}
}

// suggestKey points at the closest real key for a typo.
// removedKeys are keys earlier versions took, with what to do instead.
var removedKeys = map[string]string{
	"mongodb.embedded_listen": "the embedded engine is SQLite now (data_dir/wildcat.db): open it with the sqlite3 shell, or move to MongoDB with wildcatd store copy; delete the key",
}

func suggestKey(unknown string, keys []Key) string {
	best, bestDist := "", 3
	for _, k := range keys {
		if d := editDistance(unknown, k.Name); d < bestDist {
			best, bestDist = k.Name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func cleanYAMLError(err error) string {
	msg := err.Error()
	// koanf prefixes parser errors with its own words; keep the parser's.
	if i := strings.Index(msg, "yaml: "); i >= 0 {
		msg = msg[i:]
	}
	return "invalid YAML: " + msg
}

func cleanPathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
