package browsertest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/restapi"
)

// TestAuditLogIsReadable: after a developer creates a deployment, a
// read-only user finds the audit log in the navigation and reads the entry
// as "Created deployment", with the deployment linked and the details as a
// table (no raw JSON), and sees nothing about what admins did elsewhere;
// the link opens the deployment. An admin sees the admin entries, with
// their targets linked to the admin pages.
func TestAuditLogIsReadable(t *testing.T) {
	st := newDeploymentStack(t)
	dev := apiLogin(t, st.URL, "dev", stackUserPass)
	var dep restapi.Deployment
	dev.call("POST", "/deployments", map[string]any{"project_id": st.ProjectID, "environment_id": st.EnvID,
		"name": "pr-5", "tags": map[string]string{"web": "v1.1.0"}}, 202, &dep)

	r := newBrowser(t, st.URL)
	r.login("reader", stackUserPass)
	r.click(`#nav a[href="/audit"]`)
	r.waitFor("audit rows", `!!document.querySelector('[data-action-code="deployment.create"]')`, 30*time.Second)
	row := `tr:has([data-action-code="deployment.create"])`
	if got := r.textOf(row + ` .audit-action`); got != "Created deployment" {
		t.Errorf("action reads %q, want \"Created deployment\"", got)
	}
	if href := eval[string](r, `document.querySelector('`+row+` a[data-target="deployment"]').getAttribute('href')`); href != fmt.Sprintf("/deployments/%d", dep.ID) {
		t.Errorf("target links to %q", href)
	}
	if got := r.textOf(row + ` a[data-target="deployment"]`); got != "deployment pr-5" {
		t.Errorf("target reads %q, want \"deployment pr-5\"", got)
	}
	details := eval[map[string]string](r, `Object.fromEntries([...document.querySelectorAll('`+row+` table.kv tr')].map((tr) => [tr.querySelector('th').textContent, tr.querySelector('td').textContent]))`)
	if details["tags.web"] != "v1.1.0" || details["name"] != "pr-5" || details["project"] != "shop" || details["pipeline version"] == "" {
		t.Errorf("details table %v: want tags.web, name, project and pipeline version", details)
	}
	if cell := r.textOf(row + ` td[data-label="Details"]`); strings.Contains(cell, "{") || strings.Contains(cell, `":`) {
		t.Errorf("details still look like JSON: %q", cell)
	}
	// The API shows users only entries about what they can see.
	if n := r.count(`[data-action-code^="user."], [data-action-code^="team."], [data-action-code^="registry."]`); n != 0 {
		t.Errorf("a read-only user sees %d admin entries", n)
	}
	r.shot("01-audit-as-reader")
	r.click(row + ` a[data-target="deployment"]`)
	r.waitFor("deployment page", fmt.Sprintf(`location.pathname === '/deployments/%d' && !!document.querySelector('#dep-status')`, dep.ID), 20*time.Second)
	r.waitText("#page-title", "pr-5")

	a := newBrowser(t, st.URL)
	a.login(adminUser, stackAdminPass)
	a.open("/admin/audit?action=team.create")
	a.waitFor("team entries", `!!document.querySelector('[data-action-code="team.create"]')`, 30*time.Second)
	if got := a.textOf(`[data-action-code="team.create"]`); got != "Created team" {
		t.Errorf("admin sees action %q, want \"Created team\"", got)
	}
	if href := eval[string](a, `document.querySelector('a[data-target="team"]').getAttribute('href')`); !strings.HasPrefix(href, "/admin/teams/") {
		t.Errorf("team target links to %q", href)
	}
	a.shot("02-audit-as-admin")
}
