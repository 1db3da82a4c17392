package browsertest

import (
	"fmt"
	"testing"
	"time"

	"github.com/nullops/nullops/restapi"
)

// TestCancelAndRetryFromTheUI on the full stack: a developer cancels a
// deployment that is still deploying (its service never gets healthy) from
// its page, and it ends deleted with "cancelled" in its history; a
// deployment whose service crashes fails, the admin fixes the pipeline,
// and the developer's Retry brings it up running on the new version.
func TestCancelAndRetryFromTheUI(t *testing.T) {
	st := newDeploymentStack(t)
	pipeline := func(env map[string]string) {
		env["SERVICE_NAME"] = "web"
		st.Admin.call("PUT", fmt.Sprintf("/projects/%d/pipeline", st.ProjectID), map[string]any{
			"nodes": []map[string]any{{"id": "web", "kind": "service", "service": "web", "port": 8080, "ingress": true,
				"env": env, "position": map[string]int{"x": 40, "y": 40}}},
			"edges": [][2]string{},
		}, 201, nil)
	}
	dev := apiLogin(t, st.URL, "dev", stackUserPass)
	create := func(name string) int64 {
		return dev.id("POST", "/deployments", map[string]any{"project_id": st.ProjectID, "environment_id": st.EnvID,
			"name": name, "tags": map[string]string{"web": "v1.0.0"}}, 202)
	}
	b := newBrowser(t, st.URL)
	b.login("dev", stackUserPass)

	// Cancel while deploying: the health check waits for a /ready that
	// never comes.
	pipeline(map[string]string{"HEALTHY_AFTER_READY": "1"})
	hold := create("pr-hold")
	b.open(fmt.Sprintf("/deployments/%d", hold))
	b.waitFor("web running (waiting for health)", `!!document.querySelector('svg.progress-graph g.node.st-running[data-node="web"]')`, 120*time.Second)
	b.waitText("#dep-status", "deploying")
	b.click(`[data-action="cancel"]`)
	b.confirm()
	b.waitText("#toasts", "pr-hold is being cancelled")
	b.waitFor("status deleted", `document.querySelector('#dep-status').textContent.includes('deleted')`, 120*time.Second)
	b.waitText(".history", "cancelled")
	b.shot("01-cancelled")
	var got restapi.Deployment
	dev.call("GET", fmt.Sprintf("/deployments/%d", hold), nil, 200, &got)
	if got.Status != "deleted" {
		t.Errorf("cancelled deployment is %s", got.Status)
	}

	// Retry after a fix: the service exits at once, so the deployment fails.
	pipeline(map[string]string{"EXIT_AFTER": "0s", "EXIT_CODE": "3"})
	crash := create("pr-crash")
	b.open(fmt.Sprintf("/deployments/%d", crash))
	b.waitFor("status failed", `document.querySelector('#dep-status').textContent.includes('failed')`, 120*time.Second)
	b.waitText("#failure-reason", "web")
	pipeline(map[string]string{})
	var latest restapi.PipelineVersion
	st.Admin.call("GET", fmt.Sprintf("/projects/%d/pipeline", st.ProjectID), nil, 200, &latest)
	b.click(`[data-action="retry"]`)
	b.waitText("#toasts", "Retrying pr-crash.")
	b.waitFor("status running", `document.querySelector('#dep-status').textContent.includes('running')`, 120*time.Second)
	b.waitFor("no failure note", `!document.querySelector('#failure-reason')`, 20*time.Second)
	b.waitText(".history", "retried")
	b.shot("02-retried")
	var after restapi.Deployment
	dev.call("GET", fmt.Sprintf("/deployments/%d", crash), nil, 200, &after)
	if after.Status != "running" || after.PipelineVersion != latest.Version {
		t.Errorf("after Retry: %+v, want running on pipeline version %d", after, latest.Version)
	}
}
