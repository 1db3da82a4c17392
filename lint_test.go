package nullops_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentAndIngressDoNotImportServer enforces the layering rule: the only
// code shared by server and agent is the wire contract (agent/protocol), so
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
			t.Errorf("agent/ingress code depends on %s; share code through agent/protocol or internal/ instead", line)
		}
	}
	// And list which of our packages pulled it in, to make the failure actionable.
	if t.Failed() {
		out, _ := exec.Command("go", "list", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", "./agent/...", "./ingress/...").CombinedOutput()
		t.Logf("imports:\n%s", out)
	}
}
