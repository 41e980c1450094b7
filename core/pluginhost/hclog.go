package pluginhost

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// levelTrace is hclog's Trace in slog terms: below Debug.
const levelTrace = slog.LevelDebug - 4

// slogHCLog adapts a *slog.Logger to hclog.Logger, which go-plugin logs
// through: its own messages, and every line a plugin writes to stderr
// (hclog JSON is parsed back into level, message and fields).
type slogHCLog struct {
	l    *slog.Logger
	name string
}

var _ hclog.Logger = (*slogHCLog)(nil)

func newHCLog(l *slog.Logger) hclog.Logger { return &slogHCLog{l: l} }

func toSlogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (h *slogHCLog) Log(level hclog.Level, msg string, args ...any) {
	lv := toSlogLevel(level)
	if !h.l.Enabled(context.Background(), lv) {
		return
	}
	// go-plugin appends the plugin's own "timestamp" to each parsed line;
	// the daemon's log has its own.
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == "timestamp" {
			args = append(args[:i:i], args[i+2:]...)
			break
		}
	}
	// go-plugin's own lines name the executable "plugin", which would
	// repeat the key that already names the plugin: call it path.
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == "plugin" {
			args = append(args[:i:i], append([]any{"path"}, args[i+1:]...)...)
		}
	}
	h.l.Log(context.Background(), lv, msg, args...)
}

func (h *slogHCLog) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *slogHCLog) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *slogHCLog) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *slogHCLog) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *slogHCLog) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *slogHCLog) enabled(l slog.Level) bool { return h.l.Enabled(context.Background(), l) }

func (h *slogHCLog) IsTrace() bool { return h.enabled(levelTrace) }
func (h *slogHCLog) IsDebug() bool { return h.enabled(slog.LevelDebug) }
func (h *slogHCLog) IsInfo() bool  { return h.enabled(slog.LevelInfo) }
func (h *slogHCLog) IsWarn() bool  { return h.enabled(slog.LevelWarn) }
func (h *slogHCLog) IsError() bool { return h.enabled(slog.LevelError) }

func (h *slogHCLog) ImpliedArgs() []any { return nil }

func (h *slogHCLog) With(args ...any) hclog.Logger {
	return &slogHCLog{l: h.l.With(args...), name: h.name}
}

func (h *slogHCLog) Name() string { return h.name }

func (h *slogHCLog) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return &slogHCLog{l: h.l, name: name}
}

func (h *slogHCLog) ResetNamed(name string) hclog.Logger { return &slogHCLog{l: h.l, name: name} }

// SetLevel is ignored: the daemon's slog handler decides.
func (h *slogHCLog) SetLevel(hclog.Level) {}

// GetLevel reports the lowest level the slog handler lets through, so
// go-plugin can skip parsing plugin lines that would be dropped.
func (h *slogHCLog) GetLevel() hclog.Level {
	switch {
	case h.IsTrace():
		return hclog.Trace
	case h.IsDebug():
		return hclog.Debug
	case h.IsInfo():
		return hclog.Info
	case h.IsWarn():
		return hclog.Warn
	case h.IsError():
		return hclog.Error
	}
	return hclog.Off
}

func (h *slogHCLog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *slogHCLog) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		h.Info(strings.TrimRight(string(p), "\n"))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// levelName is the daemon's level as the SDK's LogLevelEnv spells it.
func levelName(l *slog.Logger) string {
	return strings.ToLower(newHCLog(l).GetLevel().String())
}
