package nullops_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDockerComposeFile validates docker-compose.yml the way a user's
// `docker-compose up` would read it: it must be valid with the documented
// variables set, refuse to start without them, run the images `make images`
// builds, mount what the agent needs, and use only NULLOPS_* variables the
// binaries actually read (a misspelt one would be silently ignored).
func TestDockerComposeFile(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose is not installed (scripts/setup.sh installs it)")
	}
	env := append(os.Environ(), "NULLOPS_SECRET_KEY=k", "NULLOPS_ADMIN_PASSWORD=p", "NULLOPS_INGRESS_TOKEN=t", "AGENT_TOKEN=a")
	cmd := exec.Command("docker-compose", "-f", "docker-compose.yml", "config")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}

	// Without the secret key it refuses, naming the variable.
	cmd = exec.Command("docker-compose", "-f", "docker-compose.yml", "config", "-q")
	for _, kv := range env {
		if !strings.HasPrefix(kv, "NULLOPS_SECRET_KEY=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if msg, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(msg), "NULLOPS_SECRET_KEY") {
		t.Errorf("config without NULLOPS_SECRET_KEY: %v\n%s", err, msg)
	}

	// An empty agent token (e.g. a .env that lost it) stops every command,
	// so a later `up` cannot start the agent without one.
	cmd = exec.Command("docker-compose", "-f", "docker-compose.yml", "config", "-q")
	cmd.Env = append(append([]string{}, env...), "AGENT_TOKEN=")
	if msg, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(msg), "AGENT_TOKEN") {
		t.Errorf("config with an empty AGENT_TOKEN: %v\n%s", err, msg)
	}

	binaries := map[string]string{
		"nullops/server:latest":  "./cmd/nullops-server",
		"nullops/ingress:latest": "./cmd/nullops-ingress",
		"nullops/agent:latest":   "./cmd/nullops-agent",
	}
	var cfg struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"` // source:target[:mode]
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("resolved config: %v\n%s", err, out)
	}
	// Every service is health-checked; NullOps' own images (FROM scratch,
	// no curl) by their binary's healthcheck subcommand.
	for name, svc := range cfg.Services {
		hc := svc.Healthcheck.Test
		if len(hc) < 2 || hc[0] != "CMD" {
			t.Errorf("service %s has no health check command (healthcheck.test %v)", name, hc)
			continue
		}
		if pkg, ours := binaries[svc.Image]; ours && (hc[1] != "/"+filepath.Base(pkg) || len(hc) != 3 || hc[2] != "healthcheck") {
			t.Errorf("service %s's health check is %v, want [CMD /%s healthcheck]", name, hc, filepath.Base(pkg))
		}
	}
	seen := map[string]bool{}
	for name, svc := range cfg.Services {
		pkg, ours := binaries[svc.Image]
		if !ours {
			if name != "db" {
				t.Errorf("service %s runs %s, not an image make images builds", name, svc.Image)
			}
			continue
		}
		seen[svc.Image] = true
		known := envNames(t, pkg)
		for k := range svc.Environment {
			if strings.HasPrefix(k, "NULLOPS_") && !known[k] {
				t.Errorf("service %s sets %s, which %s does not read (known: %v)", name, k, pkg, sortedKeys(known))
			}
		}
	}
	if len(seen) != len(binaries) {
		t.Errorf("compose runs %v, want all of %v", seen, binaries)
	}
	agent := cfg.Services["agent"]
	mounts := map[string]string{}
	for _, v := range agent.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 {
			mounts[parts[1]] = parts[0]
		}
	}
	if mounts["/var/run/docker.sock"] != "/var/run/docker.sock" || mounts["/data"] == "" {
		t.Errorf("agent mounts %v; want the Docker socket and a /data volume", mounts)
	}
	if _, ok := agent.Environment["AGENT_TOKEN"]; !ok {
		t.Error("agent has no AGENT_TOKEN")
	}
}

// helpOutput caches each binary's --help: building it is the slow part and
// two tests read it.
var helpOutput = map[string][]byte{}

// helpFlags lists the options a binary's --help shows (without "--").
func helpFlags(t *testing.T, pkg string) []string {
	t.Helper()
	out, ok := helpOutput[pkg]
	if !ok {
		out, _ = exec.Command("go", "run", pkg, "--help").CombinedOutput()
		helpOutput[pkg] = out
	}
	found := regexp.MustCompile(`(?m)^\s+--([a-z0-9.]+)\s`).FindAllStringSubmatch(string(out), -1)
	if len(found) == 0 {
		t.Fatalf("%s --help lists no flags:\n%s", pkg, out)
	}
	var flags []string
	for _, f := range found {
		flags = append(flags, f[1])
	}
	return flags
}

// envNames derives the NULLOPS_* variables a binary reads from its --help
// (paerser: flag --a.b ↔ NULLOPS_A_B).
func envNames(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, f := range helpFlags(t, pkg) {
		names["NULLOPS_"+strings.ToUpper(strings.ReplaceAll(f, ".", "_"))] = true
	}
	return names
}

// TestConfigurationDocListsEveryOption keeps docs/configuration.md in step
// with the binaries (regenerate it with scripts/gen-config-doc.sh).
func TestConfigurationDocListsEveryOption(t *testing.T) {
	doc, err := os.ReadFile("docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"./cmd/nullops-server", "./cmd/nullops-agent", "./cmd/nullops-ingress"} {
		for _, f := range helpFlags(t, pkg) {
			if !strings.Contains(string(doc), "| `--"+f+"` |") {
				t.Errorf("docs/configuration.md lacks %s --%s; run: bash scripts/gen-config-doc.sh > docs/configuration.md", pkg, f)
			}
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
