// Package confload builds paerser commands whose configuration is read from a
// file, then environment variables, then flags — each source overriding the
// one before it — and validated before the command runs.
package confload

import (
	"fmt"
	"os"
	"strings"

	"github.com/traefik/paerser/cli"
	"github.com/traefik/paerser/env"
	"github.com/traefik/paerser/file"
	"github.com/traefik/paerser/flag"
	"github.com/traefik/paerser/parser"
)

// EnvPrefix is the prefix of every NullOps environment variable.
const EnvPrefix = "NULLOPS_"

// Validator is implemented by configuration structs that check their values
// after loading. Errors should name the offending key (e.g. "log.format").
type Validator interface {
	Validate() error
}

// Loader is a paerser ResourceLoader that merges file < env < flags.
type Loader struct {
	// FileKey is the flag name holding the configuration file path
	// (lower-case, e.g. "configfile").
	FileKey string
	// Aliases maps extra environment variable names (e.g. AGENT_TOKEN) to the
	// NULLOPS_ name they stand for. A NULLOPS_ variable wins over its alias.
	Aliases map[string]string
	// Environ returns the environment; os.Environ when nil (tests override).
	Environ func() []string
}

// Load implements cli.ResourceLoader.
func (l *Loader) Load(args []string, cmd *cli.Command) (bool, error) {
	if err := l.apply(args, cmd.Configuration); err != nil {
		return false, err
	}
	return true, nil
}

func (l *Loader) apply(args []string, cfg any) error {
	environ := os.Environ
	if l.Environ != nil {
		environ = l.Environ
	}
	vars := withAliases(environ(), l.Aliases)

	// The file path may itself come from a flag or from the environment.
	path := ""
	fileKey := l.FileKey
	if fileKey == "" {
		fileKey = "configfile"
	}
	if ref, err := flag.Parse(args, cfg); err == nil {
		path = ref[parser.DefaultRootName+"."+fileKey]
		if path == "" {
			for k, v := range ref {
				if strings.EqualFold(k, parser.DefaultRootName+"."+fileKey) {
					path = v
				}
			}
		}
	}
	if path == "" {
		envName := EnvPrefix + strings.ToUpper(fileKey)
		for _, kv := range vars {
			if name, val, ok := strings.Cut(kv, "="); ok && name == envName {
				path = val
			}
		}
	}
	if path != "" {
		if err := checkFileKeys(path, cfg); err != nil {
			return fmt.Errorf("configuration file %s: %w", path, err)
		}
		if err := file.Decode(path, cfg); err != nil {
			return fmt.Errorf("configuration file %s: %w", path, err)
		}
	}

	if found := env.FindPrefixedEnvVars(vars, EnvPrefix, cfg); len(found) > 0 {
		if err := env.Decode(found, EnvPrefix, cfg); err != nil {
			return fmt.Errorf("environment variables: %w", blameEnv(found, cfg, err))
		}
	}

	if len(args) > 0 {
		if err := flag.Decode(args, cfg); err != nil {
			return fmt.Errorf("flags: %w", blameFlag(args, cfg, err))
		}
	}

	var v Validator
	if isValidator(cfg, &v) {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("invalid configuration: %w", err)
		}
	}
	return nil
}

func isValidator(cfg any, out *Validator) bool {
	v, ok := cfg.(Validator)
	if ok {
		*out = v
	}
	return ok
}

// withAliases appends NULLOPS_ names for aliased variables unless the
// NULLOPS_ name is already set.
func withAliases(environ []string, aliases map[string]string) []string {
	if len(aliases) == 0 {
		return environ
	}
	set := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		set[name] = true
	}
	out := append([]string(nil), environ...)
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if target, ok := aliases[name]; ok && !set[target] {
			out = append(out, target+"="+val)
		}
	}
	return out
}

// Apply loads cfg from the given environment and arguments without a command;
// used by tests and subcommands.
func Apply(cfg any, args []string, environ []string, aliases map[string]string) error {
	l := &Loader{Aliases: aliases, Environ: func() []string { return environ }}
	return l.apply(args, cfg)
}

// Command returns a paerser command that loads cfg before calling run.
func Command(name, description string, cfg any, aliases map[string]string, run func(args []string) error) *cli.Command {
	return &cli.Command{
		Name:          name,
		Description:   description,
		Configuration: cfg,
		Resources:     []cli.ResourceLoader{&Loader{Aliases: aliases}},
		Run:           run,
	}
}
