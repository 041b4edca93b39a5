// Package logging sets up a process's slog logger the one way every service here logs: JSON
// for a log collector, text for a person at a terminal, at the configured level.
package logging

import (
	"io"
	"log/slog"
	"os"
)

// The formats New knows.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// DefaultFormat is text for a process writing to a terminal, and JSON otherwise.
func DefaultFormat(terminal bool) string {
	if terminal {
		return FormatText
	}
	return FormatJSON
}

// Config is the logging part of a command's configuration (LOG_LEVEL, LOG_FORMAT); commands
// embed it in theirs.
type Config struct {
	LogLevel  slog.Level
	LogFormat string
}

// Logger returns the logger c asks for, writing to w.
func (c Config) Logger(w io.Writer) *slog.Logger { return New(w, c.LogLevel, c.LogFormat) }

// New returns a logger writing to w in format (FormatText or FormatJSON) at level.
func New(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == FormatText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// IsTerminal reports whether w is a terminal, where a person rather than a collector reads.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
