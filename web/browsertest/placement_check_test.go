package browsertest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/restapi"
)

// TestNewDeploymentFormSaysWhenNoNodeHasRoom opens the new-deployment form
// as a developer: with room on the node it says so before anything is
// submitted; after an admin raises the project's CPU budget above what any
// node has, changing a version makes the form say that no node has room and
// why, without naming the node or its figures. Submitting anyway is still
// possible and answers the create's own error.
func TestNewDeploymentFormSaysWhenNoNodeHasRoom(t *testing.T) {
	st := newDeploymentStack(t)
	b := newBrowser(t, st.URL)
	b.login("dev", stackUserPass)
	b.open("/deployments/new")
	b.waitFor("tag dropdown", `!!document.querySelector('select[data-service="web"] option[value="v1.1.0"]')`, 30*time.Second)
	b.waitFor("placement verdict", `document.querySelector('#placement-check').dataset.fits === 'fits'`, 30*time.Second)
	if got := b.textOf("#placement-check"); !strings.Contains(got, "A node has room") || !strings.Contains(got, "0.25 CPU") {
		t.Errorf("placement check says %q, want room for 0.25 CPU", got)
	}
	b.shot("01-node-has-room")

	// The project now needs more CPUs than the node (4) has.
	st.Admin.call("PUT", fmt.Sprintf("/projects/%d", st.ProjectID), map[string]any{"name": "shop", "cpu": 16, "memory_mb": 128}, 200, nil)
	b.selectOption(`select[data-service="web"]`, "v1.0.0")
	b.waitFor("no-fit verdict", `document.querySelector('#placement-check').dataset.fits === 'no-fit'`, 30*time.Second)
	got := b.textOf("#placement-check")
	if !strings.Contains(got, "No node has room") || !strings.Contains(got, "no node in environment qa has 16.0 CPUs free") {
		t.Errorf("placement check says %q, want why no node has room", got)
	}
	if strings.Contains(got, "node-1") || strings.Contains(got, "of 4") {
		t.Errorf("placement check leaks the node's name or figures: %q", got)
	}
	if !eval[bool](b, `document.querySelector('#placement-check').getAttribute('role') === 'status'`) {
		t.Errorf("the verdict is not announced (role=status)")
	}
	b.shot("02-no-node-has-room")

	// Submitting anyway gets the create's answer; nothing is created.
	b.fill(`#deployment-form [name="name"]`, "pr-9")
	b.click(`#deployment-form button[type="submit"]`)
	b.waitText("#deployment-form", "16.0 CPUs free")
	var list restapi.List[restapi.Deployment]
	st.Admin.call("GET", "/deployments", nil, 200, &list)
	if list.Total != 0 {
		t.Errorf("%d deployments exist after a refused create", list.Total)
	}
}
