package nullops_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestAgentAndIngressDoNotImportServer enforces the layering rule: the only
// code shared by server and agent is the wire contract (protocol), so
// nothing under agent/ or ingress/ (nor their commands) may depend on
// server/, directly or transitively.
func TestAgentAndIngressDoNotImportServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}",
		"./agent/...", "./ingress/...", "./cmd/nullops-agent", "./cmd/nullops-ingress").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "github.com/nullops/nullops/server") {
			t.Errorf("agent/ingress code depends on %s; share code through protocol or internal/ instead", line)
		}
	}
	// And list which of our packages pulled it in, to make the failure actionable.
	if t.Failed() {
		out, _ := exec.Command("go", "list", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", "./agent/...", "./ingress/...").CombinedOutput()
		t.Logf("imports:\n%s", out)
	}
}

// TestExecutorKnowsNoRuntime: the executor runs workloads only through
// agent/runtime.Runtime, and that interface names no Docker or Kubernetes
// type, so either runtime plugs in without the executor changing
// (docs/architecture.md, "Agent").
func TestExecutorKnowsNoRuntime(t *testing.T) {
	for _, pkg := range []string{"./agent/executor", "./agent/runtime"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			for _, banned := range []string{"github.com/nullops/nullops/agent/docker", "github.com/nullops/nullops/agent/kube", "github.com/moby/", "github.com/docker/", "k8s.io/"} {
				if strings.HasPrefix(line, banned) {
					t.Errorf("%s depends on %s; it may only use agent/runtime", pkg, line)
				}
			}
		}
	}
}

// TestPluginsDoNotImportAgentOrServer: plugin binaries are built from
// plugins/ alone plus neutral packages (protocol, internal/); agent and
// server internals stay out of them.
func TestPluginsDoNotImportAgentOrServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./plugins/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "github.com/nullops/nullops/agent") || strings.HasPrefix(line, "github.com/nullops/nullops/server") {
			t.Errorf("a plugin depends on %s; share code through protocol or internal/ instead", line)
		}
	}
}

// TestNothingPointsOutsideTheRepository keeps the repository self-explaining:
// code, scripts and docs may not refer readers to documents that are not in it
// (the design lives in docs/architecture.md).
func TestNothingPointsOutsideTheRepository(t *testing.T) {
	out, err := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	forbidden := []string{"DESIGN" + ".md", "../" + "shared/", "spec/nullops-" + "product-spec"}
	for _, name := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !textFile(name) {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			continue // deleted in the work tree
		}
		for _, f := range forbidden {
			if strings.Contains(string(data), f) {
				t.Errorf("%s mentions %q, which is outside the repository; point to docs/architecture.md instead", name, f)
			}
		}
	}
}

func textFile(name string) bool {
	for _, ext := range []string{".go", ".js", ".css", ".html", ".md", ".sql", ".sh", ".yml", ".yaml", ".toml", "Makefile", "Dockerfile"} {
		if strings.HasSuffix(name, ext) || strings.Contains(name, "Dockerfile") {
			return true
		}
	}
	return false
}

// TestContractsAreLeaves: the REST contract (restapi) and the error
// vocabulary (server/errs) import nothing of this repository, and the CLI
// reaches the server only through restapi, never through server/.
func TestContractsAreLeaves(t *testing.T) {
	for _, pkg := range []string{"./restapi", "./server/errs", "./cli", "./cmd/nullops"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			ours := strings.HasPrefix(dep, "github.com/nullops/nullops/")
			switch {
			case pkg == "./restapi" || pkg == "./server/errs":
				if ours && dep != "github.com/nullops/nullops/"+strings.TrimPrefix(pkg, "./") {
					t.Errorf("%s depends on %s; it must be a leaf", pkg, dep)
				}
			case strings.HasPrefix(dep, "github.com/nullops/nullops/server"):
				t.Errorf("%s depends on %s; the CLI speaks only the REST contract (restapi)", pkg, dep)
			}
		}
	}
}
