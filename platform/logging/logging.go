// Package logging builds the structured slog logger every binary uses.
package logging

import (
	"flag"
	"io"
	"log/slog"
	"strings"

	"github.com/openhavip/havip/platform/config"
)

// Config is the logging setting every binary has.
type Config struct {
	// Level is debug, info, warn or error (-log-level, HAVIP_LOG_LEVEL); empty means info.
	Level string
}

// levelSetting is Config.Level's flag and variable.
var levelSetting = config.Setting{Flag: "log-level", Env: "HAVIP_LOG_LEVEL"}

// RegisterFlags registers -log-level on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	if c.Level == "" {
		c.Level = "info"
	}
	config.String(fs, &c.Level, levelSetting, "the least level logged: debug, info, warn or error")
}

// Validate reports a level that is not one of the four.
func (c Config) Validate() error {
	if _, ok := parseLevel(c.Level); !ok {
		return levelSetting.Errorf(c.Level, "want debug, info, warn or error")
	}
	return nil
}

// parseLevel returns the named level ("" is info).
func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, true
	case "", "info":
		return slog.LevelInfo, true
	case "warn":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return slog.LevelInfo, false
}

// New returns a JSON slog logger writing to w at the named level (debug, info, warn, error;
// anything else is info: check it with Config.Validate first).
func New(w io.Writer, level string, service string) *slog.Logger {
	lvl, _ := parseLevel(level)
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})).With("service", service)
}
