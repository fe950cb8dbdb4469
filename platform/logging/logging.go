// Package logging builds the structured slog logger every binary uses.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// New returns a JSON slog logger writing to w at the named level (debug, info, warn, error).
func New(w io.Writer, level string, service string) *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})).With("service", service)
}
