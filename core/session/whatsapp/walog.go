package whatsapp

import (
	"context"
	"fmt"
	"log/slog"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// waLogger routes whatsmeow's printf-style log into slog. whatsmeow's Info
// is chatty (every frame at debug, connection steps at info), so its Info
// becomes our Debug.
type waLogger struct{ l *slog.Logger }

var _ waLog.Logger = waLogger{}

func (w waLogger) log(level slog.Level, msg string, args []any) {
	if w.l.Enabled(context.Background(), level) {
		w.l.Log(context.Background(), level, fmt.Sprintf(msg, args...))
	}
}

func (w waLogger) Errorf(msg string, args ...any) { w.log(slog.LevelError, msg, args) }
func (w waLogger) Warnf(msg string, args ...any)  { w.log(slog.LevelWarn, msg, args) }
func (w waLogger) Infof(msg string, args ...any)  { w.log(slog.LevelDebug, msg, args) }
func (w waLogger) Debugf(msg string, args ...any) { w.log(slog.LevelDebug-4, msg, args) }
func (w waLogger) Sub(module string) waLog.Logger {
	return waLogger{w.l.With(slog.String("module", module))}
}

// NewWALogger routes a whatsmeow component's log (e.g. its sqlstore's)
// into l, at the levels the driver's own whatsmeow log uses.
func NewWALogger(l *slog.Logger) waLog.Logger { return waLogger{l} }
