// Package config reads settings from flags with environment variables as their defaults.
package config

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// Env returns the environment variable key, or def when it is unset or empty.
func Env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// String registers a string flag whose default comes from env (or def).
func String(fs *flag.FlagSet, name, env, def, usage string) *string {
	return fs.String(name, Env(env, def), usage+" (env "+env+")")
}

// List splits a comma-separated setting into its non-empty parts.
func List(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ParseDuration parses a positive duration such as "3s".
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not positive", s)
	}
	return d, nil
}
