package browsertest

import (
	"fmt"
	"testing"
	"time"
)

// TestCrashingServiceShowsDegraded: a deployment whose service exits 3 in a
// loop after passing its health check is shown degraded, with the reason,
// on the deployments list and on its page, where the service row shows its
// state, restarts, last exit and last log lines.
func TestCrashingServiceShowsDegraded(t *testing.T) {
	st := newDeploymentStack(t)
	a := st.Admin
	pid := a.id("POST", "/projects", map[string]any{"name": "crashy", "cpu": 0.25, "memory_mb": 64}, 201)
	a.call("PUT", fmt.Sprintf("/projects/%d/pipeline", pid), map[string]any{
		"nodes": []map[string]any{{"id": "web", "kind": "service", "service": "web", "port": 8080, "ingress": true,
			"env": map[string]string{"EXIT_AFTER": "2s", "EXIT_CODE": "3"}}},
		"edges": [][2]string{},
	}, 201, nil)
	depID := a.id("POST", "/deployments", map[string]any{"project_id": pid, "environment_id": st.EnvID, "name": "crashy",
		"tags": map[string]string{"web": "v1.0.0"}}, 202)

	b := newBrowser(t, st.URL)
	b.login(adminUser, stackAdminPass)
	b.waitFor("degraded in the list", `!!document.querySelector('tr[data-name="crashy"] .badge.st-degraded')`, 3*time.Minute)
	b.waitText(`tr[data-name="crashy"] .degraded-reason`, "service web")

	b.open(fmt.Sprintf("/deployments/%d", depID))
	b.waitFor("degraded notice", `!!document.querySelector('#degraded-reason')`, time.Minute)
	b.waitText("#degraded-reason", "exit code 3")
	b.waitFor("service state", `['restarting', 'exited'].some((s) => !!document.querySelector('tr[data-service="web"] .svc-state .badge.st-' + s))`, time.Minute)
	b.waitText(`tr[data-service="web"] .svc-state`, "last exit 3")
	b.waitFor("last log lines", `(document.querySelector('tr[data-service="web"] pre.last-lines') || {}).textContent?.includes('exiting with code 3 on purpose')`, time.Minute)
	b.shot("degraded-deployment")
}
