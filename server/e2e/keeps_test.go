package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/restapi"
)

// keepsDefinition: a deployment runs what it was created with. Catalog
// objects only an older pipeline version uses cannot be deleted while a
// deployment of that version lives (the refusal names it), and changing
// them does not reach the deployment: after the agent reconnects it is
// running again, not failed for a tag its service no longer allows.
func (w *world) keepsDefinition(t *testing.T) {
	svc := idOf(t, w.admin.post("/services", map[string]any{
		"name": "e2e-web-old", "registry_id": w.regID, "image": "e2e/web", "tag_mode": "selectable", "tag_pattern": "v*",
		"ports": []int{8080}, "health": map[string]any{"http": "/healthz"},
	}).want(t, 201))
	plugin := idOf(t, w.admin.post("/plugins", map[string]any{
		"name": "e2e-setup-old", "registry_id": w.regID, "image": "e2e/plugin", "tag": "1", "cpu": 0.1, "memory_mb": 32, "timeout": "60s",
	}).want(t, 201))
	graph := func(service, plugin string) map[string]any {
		return map[string]any{
			"nodes": []map[string]any{
				{"id": "setup", "kind": "component", "plugin": plugin, "params": map[string]any{"mode": "ok", "outputs": map[string]any{"greeting": "hi"}}},
				{"id": "web", "kind": "service", "service": service, "port": 8080, "ingress": true},
			},
			"edges": [][2]string{{"setup", "web"}},
		}
	}
	project := w.newProject(t, "keeper", 0.5, "", graph("e2e-web-old", "e2e-setup-old"))
	var d restapi.Deployment
	w.admin.post("/deployments", map[string]any{"project_id": project, "environment_id": w.envID, "name": "keep-1",
		"tags": map[string]string{"e2e-web-old": "v1.0.0"}}).want(t, 202).decode(t, &d)
	waitStatus(t, w.admin, d.ID, "running", 180*time.Second)

	// The project moves on: only pipeline version 1 uses the old objects.
	w.admin.put(fmt.Sprintf("/projects/%d/pipeline", project), graph("e2e-web", "e2e-setup")).want(t, 201)
	const user = `deployment "keep-1" in qa (running, pipeline version 1)`
	for _, path := range []string{fmt.Sprintf("/services/%d", svc), fmt.Sprintf("/plugins/%d", plugin)} {
		r := w.admin.del(path)
		if r.Status != 409 || !strings.Contains(r.errorMessage(), user) {
			t.Fatalf("DELETE %s while keep-1 runs version 1: %d %s", path, r.Status, r.Body)
		}
	}
	// Changes to them do not reach it: its tag v1.0.0 no longer matches.
	w.admin.put(fmt.Sprintf("/services/%d", svc), map[string]any{
		"name": "e2e-web-old", "registry_id": w.regID, "image": "e2e/web", "tag_mode": "selectable", "tag_pattern": "other-*",
		"ports": []int{9090}, "health": map[string]any{"http": "/nowhere"},
	}).want(t, 200)
	w.admin.put(fmt.Sprintf("/plugins/%d", plugin), map[string]any{
		"name": "e2e-setup-old", "registry_id": w.regID, "image": "e2e/plugin", "tag": "1", "cpu": 4, "memory_mb": 4096, "timeout": "1s",
	}).want(t, 200)

	w.node.kill()
	w.waitNode(t, w.nodeID, "offline")
	waitStatus(t, w.admin, d.ID, "offline", 30*time.Second)
	w.node.start()
	w.waitNode(t, w.nodeID, "online")
	after := waitStatus(t, w.admin, d.ID, "running", 60*time.Second)
	if after.Reason != "" {
		t.Fatalf("keep-1 after the reconnect: %s (%s)", after.Status, after.Reason)
	}

	// Once it is gone, the old objects can be deleted.
	w.admin.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202)
	waitStatus(t, w.admin, d.ID, "deleted", 60*time.Second)
	waitNoObjects(t, w.node.node, d.ID)
	w.admin.del(fmt.Sprintf("/services/%d", svc)).want(t, 204)
	w.admin.del(fmt.Sprintf("/plugins/%d", plugin)).want(t, 204)
}
