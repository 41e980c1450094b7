// Package logging builds the daemon's slog logger: text for people at a
// terminal, JSON for log collectors.
package logging

import (
	"io"
	"log/slog"
	"os"

	"github.com/mattn/go-isatty"
)

// New returns a logger writing to w. format is "text", "json" or "auto"
// (text when w is a terminal); level is debug, info, warn or error — both
// already validated by the config package.
func New(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Component returns the logger for one part of the daemon; every line it
// writes carries component=name so operators can filter by it.
func Component(l *slog.Logger, name string) *slog.Logger {
	return l.With(slog.String("component", name))
}

// Discard is a logger for tests and quiet paths.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
