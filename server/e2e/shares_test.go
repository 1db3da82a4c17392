package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
)

// shares: each container of a deployment gets its share of the budget
// placement reserved (explicit per node, plugins their catalog limits, the
// rest split evenly), enforced by Docker; shares over the budget are refused
// at dry-run and save.
func (w *world) shares(t *testing.T) {
	// Budget 1 CPU / 256 MB. CPU: web-a 0.5 explicit, setup 0.1 (its
	// plugin's limit), web-b the remaining 0.4. Memory: setup 32, web-a and
	// web-b split the remaining 224 MB.
	graph := map[string]any{
		"resources": map[string]any{"cpu": 1, "memory_mb": 256},
		"nodes": []map[string]any{
			{"id": "setup", "kind": "component", "plugin": "e2e-setup", "params": map[string]any{"mode": "ok", "outputs": map[string]any{"greeting": "hi"}}},
			{"id": "web-a", "kind": "service", "service": "e2e-web", "port": 8080, "resources": map[string]any{"cpu": 0.5}},
			{"id": "web-b", "kind": "service", "service": "e2e-web", "port": 8080},
		},
		"edges": [][2]string{{"setup", "web-a"}},
	}
	project := w.newProject(t, "shared", 0.25, "", graph)

	var d restapi.Deployment
	w.admin.post("/deployments", map[string]any{"project_id": project, "environment_id": w.envID, "name": "shares",
		"tags": map[string]string{"e2e-web": "v1.0.0"}}).want(t, 202).decode(t, &d)
	if d.CPU != 1 || d.MemoryMB != 256 {
		t.Fatalf("reserved %v CPUs and %d MB, want the graph's 1 and 256", d.CPU, d.MemoryMB)
	}
	waitStatus(t, w.admin, d.ID, "running", 180*time.Second)
	want := map[string]string{"web-a": "500000000 117440512", "web-b": "400000000 117440512"}
	for svc, limits := range want {
		ids := containerIDs(t, w.node.node, d.ID, svc)
		if len(ids) != 1 {
			t.Fatalf("%s: containers %v", svc, ids)
		}
		got := strings.TrimSpace(testutil.Docker(t, "inspect", "--format", "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}", ids[0]))
		if got != limits {
			t.Errorf("%s: docker limits (nano CPUs, memory bytes) %q, want %q", svc, got, limits)
		}
	}
	w.admin.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202)
	waitStatus(t, w.admin, d.ID, "deleted", 120*time.Second)

	// Shares over the budget: refused at dry-run and at save, naming why.
	over := map[string]any{
		"resources": map[string]any{"cpu": 1, "memory_mb": 256},
		"nodes": []map[string]any{
			{"id": "web-a", "kind": "service", "service": "e2e-web", "port": 8080, "resources": map[string]any{"cpu": 0.75, "memory_mb": 245}},
			{"id": "web-b", "kind": "service", "service": "e2e-web", "port": 8080, "resources": map[string]any{"cpu": 0.5}},
		},
		"edges": [][2]string{},
	}
	var dry struct {
		Valid    bool              `json:"valid"`
		Problems map[string]string `json:"problems"`
	}
	w.admin.post(fmt.Sprintf("/projects/%d/pipeline/dry-run", project), over).want(t, 200).decode(t, &dry)
	if dry.Valid || !strings.Contains(dry.Problems["resources.cpu"], "add up to 1.25, more than the deployment's 1 CPUs") ||
		!strings.Contains(dry.Problems["resources.memory_mb"], "11 MB are left for 1 services") {
		t.Fatalf("dry-run of shares over the budget: %+v", dry)
	}
	r := w.admin.put(fmt.Sprintf("/projects/%d/pipeline", project), over)
	if r.Status != 400 || !strings.Contains(string(r.Body), "add up to 1.25") {
		t.Fatalf("save of shares over the budget: %d %s", r.Status, r.Body)
	}
}
