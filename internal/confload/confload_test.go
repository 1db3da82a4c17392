package confload

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type sample struct {
	ConfigFile string `description:"file"`
	Listen     string `description:"listen"`
	Token      string `description:"token"`
	Log        struct {
		Level string `description:"level"`
	} `description:"log"`
	Workers int `description:"workers"`
}

func (s *sample) Validate() error {
	if s.Workers < 0 {
		return errors.New("workers: must not be negative")
	}
	return nil
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedenceFileThenEnvThenFlags(t *testing.T) {
	path := writeFile(t, "c.toml", "listen = \":1\"\nworkers = 3\n[log]\nlevel = \"debug\"\n")
	cfg := &sample{Listen: ":9", Workers: 1}
	env := []string{"NULLOPS_CONFIGFILE=" + path, "NULLOPS_WORKERS=5", "NULLOPS_LOG_LEVEL=warn"}
	if err := Apply(cfg, []string{"--workers=7"}, env, nil); err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":1" {
		t.Errorf("listen from file: got %q", cfg.Listen)
	}
	if cfg.Log.Level != "warn" {
		t.Errorf("log.level: env should beat file, got %q", cfg.Log.Level)
	}
	if cfg.Workers != 7 {
		t.Errorf("workers: flag should beat env and file, got %d", cfg.Workers)
	}
}

func TestConfigFileFlagAndYAML(t *testing.T) {
	path := writeFile(t, "c.yaml", "listen: \":2\"\n")
	cfg := &sample{}
	if err := Apply(cfg, []string{"--configfile=" + path}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":2" {
		t.Fatalf("listen: got %q", cfg.Listen)
	}
}

func TestAliasesYieldToPrefixedNames(t *testing.T) {
	aliases := map[string]string{"AGENT_TOKEN": "NULLOPS_TOKEN"}
	cfg := &sample{}
	if err := Apply(cfg, nil, []string{"AGENT_TOKEN=abc"}, aliases); err != nil {
		t.Fatal(err)
	}
	if cfg.Token != "abc" {
		t.Fatalf("alias not applied: %q", cfg.Token)
	}
	cfg = &sample{}
	if err := Apply(cfg, nil, []string{"AGENT_TOKEN=abc", "NULLOPS_TOKEN=xyz"}, aliases); err != nil {
		t.Fatal(err)
	}
	if cfg.Token != "xyz" {
		t.Fatalf("NULLOPS_TOKEN should win over its alias: %q", cfg.Token)
	}
}

func TestBadKeysAreNamed(t *testing.T) {
	cases := map[string]func() error{
		"unknown flag": func() error { return Apply(&sample{}, []string{"--nope=1"}, nil, nil) },
		"unknown file key": func() error {
			return Apply(&sample{}, nil, []string{"NULLOPS_CONFIGFILE=" + writeFile(t, "c.toml", "nope = 1\n")}, nil)
		},
		"bad type":   func() error { return Apply(&sample{}, []string{"--workers=many"}, nil, nil) },
		"bad env":    func() error { return Apply(&sample{}, nil, []string{"NULLOPS_WORKERS=many"}, nil) },
		"validation": func() error { return Apply(&sample{}, []string{"--workers=-1"}, nil, nil) },
	}
	want := map[string]string{"bad env": "nullops_workers", "unknown flag": "nope", "unknown file key": "nope", "bad type": "workers", "validation": "workers"}
	for name, f := range cases {
		err := f()
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.Contains(strings.ToLower(err.Error()), want[name]) {
			t.Errorf("%s: error %q does not name %q", name, err, want[name])
		}
	}
}
