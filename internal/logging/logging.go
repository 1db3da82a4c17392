// Package logging configures zerolog for the NullOps binaries.
package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Config is embedded in every binary's configuration.
type Config struct {
	Level  string `description:"Log level: trace, debug, info, warn, error." json:"level,omitempty" toml:"level,omitempty" yaml:"level,omitempty" export:"true"`
	Format string `description:"Log format: json (default) or console (human-readable)." json:"format,omitempty" toml:"format,omitempty" yaml:"format,omitempty" export:"true"`
}

// Defaults returns the default logging configuration.
func Defaults() Config { return Config{Level: "info", Format: "json"} }

// Validate checks the level and format.
func (c Config) Validate() error {
	if _, err := zerolog.ParseLevel(strings.ToLower(c.Level)); err != nil || c.Level == "" {
		return fmt.Errorf("log.level: unknown level %q (use trace, debug, info, warn or error)", c.Level)
	}
	if c.Format != "json" && c.Format != "console" {
		return fmt.Errorf("log.format: unknown format %q (use json or console)", c.Format)
	}
	return nil
}

// New builds a logger writing to w (os.Stderr when nil).
func New(c Config, w io.Writer, component string) zerolog.Logger {
	if w == nil {
		w = os.Stderr
	}
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	lvl, err := zerolog.ParseLevel(strings.ToLower(c.Level))
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("component", component).Logger()
}
