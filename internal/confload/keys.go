package confload

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/traefik/paerser/env"
	"github.com/traefik/paerser/flag"
	"github.com/traefik/paerser/parser"
	"gopkg.in/yaml.v3"
)

// checkFileKeys reports the first key of a configuration file that names no
// field of cfg (paerser silently ignores such keys).
func checkFileKeys(path string, cfg any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	raw := map[string]any{}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".toml":
		if _, err := toml.Decode(string(b), &raw); err != nil {
			return fmt.Errorf("parse: %w", err)
		}
	case ".yaml", ".yml":
		if err := yaml.Unmarshal(b, &raw); err != nil {
			return fmt.Errorf("parse: %w", err)
		}
	default:
		return fmt.Errorf("unsupported extension %q (use .toml, .yaml or .yml)", filepath.Ext(path))
	}
	return checkKeys("", raw, reflect.TypeOf(cfg))
}

func checkKeys(prefix string, raw map[string]any, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := fieldByFold(t, k)
		if !ok {
			return fmt.Errorf("unknown key %q", prefix+k)
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if sub, ok := raw[k].(map[string]any); ok && ft.Kind() == reflect.Struct {
			if err := checkKeys(prefix+strings.ToLower(k)+".", sub, ft); err != nil {
				return err
			}
		}
	}
	return nil
}

func fieldByFold(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
		for _, tag := range []string{"toml", "yaml", "json"} {
			if n, _, _ := strings.Cut(f.Tag.Get(tag), ","); n != "" && strings.EqualFold(n, name) {
				return f, true
			}
		}
	}
	return reflect.StructField{}, false
}

// blameFlag finds which single flag makes decoding fail, so the error names
// the key.
func blameFlag(args []string, cfg any, cause error) error {
	ref, err := flag.Parse(args, cfg)
	if err != nil {
		return cause
	}
	names := make([]string, 0, len(ref))
	for k := range ref {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		scratch := reflect.New(reflect.TypeOf(cfg).Elem()).Interface()
		key := strings.TrimPrefix(name, parser.DefaultRootName+".")
		if err := flag.Decode([]string{"--" + key + "=" + ref[name]}, scratch); err != nil {
			return fmt.Errorf("--%s=%q: %v", key, ref[name], err)
		}
	}
	return cause
}

// blameEnv finds which single environment variable makes decoding fail.
func blameEnv(vars []string, cfg any, cause error) error {
	for _, kv := range vars {
		scratch := reflect.New(reflect.TypeOf(cfg).Elem()).Interface()
		if err := env.Decode([]string{kv}, EnvPrefix, scratch); err != nil {
			name, _, _ := strings.Cut(kv, "=")
			return fmt.Errorf("%s: %v", name, err)
		}
	}
	return cause
}
