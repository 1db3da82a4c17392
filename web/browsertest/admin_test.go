package browsertest

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
)

// catalogFixture is what the admin journey builds through the UI.
type catalogFixture struct {
	registry *testutil.Registry
	image    string // repository in the registry
}

// pushDemoImage runs a real docker-registry with credentials and pushes a
// FROM-scratch image under several tags, so tag listing and the pattern
// preview have something real to show.
func pushDemoImage(t *testing.T) catalogFixture {
	t.Helper()
	reg := testutil.StartRegistry(t, "ui", "ui-secret-pass")
	ref := testutil.ScratchImage(t, "./scripts/images/demo-web", fmt.Sprintf("nullops-uitest/demo-web:%d", os.Getpid()))
	repo := "team/demo-web"
	reg.Push(t, ref, repo, "v1.0.0", "v1.1.0", "v2.0.0", "features-login")
	return catalogFixture{registry: reg, image: repo}
}

// createInDialog opens a crud page's "New …" dialog, fills it and submits.
// fill is called with the form's CSS selector.
func (b *browser) createInDialog(page, singular string, fill func(form string)) {
	b.t.Helper()
	b.open(page)
	b.click("#new-" + singular)
	form := "#" + singular + "-form"
	b.waitFor(singular+" form", fmt.Sprintf(`!!document.querySelector('dialog[open] %s')`, form), 10*time.Second)
	fill("dialog[open] " + form)
	b.click("dialog[open] " + form + ` button[type="submit"]`)
	b.waitFor(singular+" dialog closed", `!document.querySelector('dialog[open]')`, 20*time.Second)
	b.waitText("#toasts", singular+" created")
}

// TestAdminBuildsACatalogAndAPipeline is the admin journey: log in, add a
// registry (test connection), a selectable service (live preview of the
// tags matching its pattern), a plugin with a parameter schema, an
// environment, a node (token shown once with the docker run command) and a
// project whose two-node pipeline is drawn in the editor with real mouse
// drags: nodes from the palettes, an edge from an output port to an input
// port. Validation pins a missing parameter to its node; saving makes
// version 1, which the API then returns with the edge and the positions.
func TestAdminBuildsACatalogAndAPipeline(t *testing.T) {
	fx := pushDemoImage(t)
	env := startServer(t)
	b := newBrowser(t, env.URL)

	b.login(adminUser, adminPassword)
	b.shot("01-deployments-empty")

	// Registry with credentials; test connection talks to the real registry.
	b.createInDialog("/admin/registries", "registry", func(f string) {
		b.fill(f+` [name="name"]`, "local")
		b.fill(f+` [name="url"]`, "http://"+fx.registry.Host)
		b.fill(f+` [name="username"]`, fx.registry.Username)
		b.fill(f+` [name="password"]`, fx.registry.Password)
		b.click(f + ` [name="insecure"]`)
	})
	b.click(`tr[data-name="local"] button[aria-label^="Test connection"]`)
	b.waitText("#toasts", "local: the registry answered")
	b.shot("02-registries")

	// A selectable service: the preview lists exactly the tags matching v1.*.
	b.open("/admin/services")
	b.click("#new-service")
	f := `dialog[open] #service-form`
	b.fill(f+` [name="name"]`, "web")
	b.selectWait(f+` [name="registry_id"]`, "local")
	b.fill(f+` [name="image"]`, fx.image)
	b.selectOption(f+` [name="tag_mode"]`, "Selectable")
	b.fill(f+` [name="tag_pattern"]`, "v1.*")
	b.waitText(f+" .tag-preview", "2 matching")
	preview := b.textOf(f + " .tag-preview")
	if !strings.Contains(preview, "v1.0.0") || !strings.Contains(preview, "v1.1.0") || strings.Contains(preview, "v2.0.0") {
		t.Errorf("tag preview %q: want v1.0.0 and v1.1.0 only", preview)
	}
	b.fill(f+` [name="ports"]`, "8080")
	b.shot("03-service-preview")
	b.click(f + ` button[type="submit"]`)
	b.waitText("#toasts", "service created")

	// A plugin whose schema requires a parameter.
	b.createInDialog("/admin/plugins", "plugin", func(f string) {
		b.fill(f+` [name="name"]`, "seed")
		b.selectWait(f+` [name="registry_id"]`, "local")
		b.fill(f+` [name="image"]`, fx.image)
		b.fill(f+` [name="tag"]`, "v1.0.0")
		b.fill(f+` [name="params_schema"]`, `{"type":"object","properties":{"database":{"type":"string","description":"Database to create"}},"required":["database"]}`)
		b.fill(f+` [name="timeout"]`, "2")
	})

	// Environment (its node is added at the end).
	b.createInDialog("/admin/environments", "environment", func(f string) {
		b.fill(f+` [name="name"]`, "qa")
		b.fill(f+` [name="base_domain"]`, "example.test")
	})
	// Project, then its pipeline in the editor.
	b.createInDialog("/admin/projects", "project", func(f string) {
		b.fill(f+` [name="name"]`, "shop")
	})
	b.click(`tr[data-name="shop"] a.button`) // "Pipeline"
	b.waitText("#page-title", "Pipeline of shop")
	b.waitFor("palette", `!!document.querySelector('.palette-item[data-name="web"]')`, 20*time.Second)

	// Drag the plugin and the service from the palettes onto the canvas.
	cx, cy := b.center(".canvas-wrap")
	px, py := b.center(`.palette-item[data-kind="component"][data-name="seed"]`)
	b.drag(px, py, cx-200, cy-60)
	b.waitFor("seed node on the canvas", `!!document.querySelector('g.node[data-node="seed"]')`, 5*time.Second)
	sx, sy := b.center(`.palette-item[data-kind="service"][data-name="web"]`)
	b.drag(sx, sy, cx+150, cy+40)
	b.waitFor("web node on the canvas", `!!document.querySelector('g.node[data-node="web"]')`, 5*time.Second)

	// Move the web node by dragging its body; its position follows.
	before := eval[[]float64](b, `(() => { const r = document.querySelector('g.node[data-node="web"] .node-box').getBoundingClientRect(); return [r.left, r.top]; })()`)
	wx, wy := b.center(`g.node[data-node="web"] .node-id`)
	b.drag(wx, wy, wx+40, wy+60)
	after := eval[[]float64](b, `(() => { const r = document.querySelector('g.node[data-node="web"] .node-box').getBoundingClientRect(); return [r.left, r.top]; })()`)
	if after[0]-before[0] < 30 || after[1]-before[1] < 50 {
		t.Errorf("node moved from %v to %v; want about +40,+60", before, after)
	}

	// Connect seed's output port to web's input port.
	ox, oy := b.center(`g.node[data-node="seed"] .port-out`)
	ix, iy := b.center(`g.node[data-node="web"] .port-in`)
	b.drag(ox, oy, ix, iy)
	b.waitFor("edge seed->web", `!!document.querySelector('g.edge[data-edge="seed->web"]')`, 5*time.Second)

	// Validate: the required parameter is missing and pinned to the node.
	b.click("#validate")
	b.waitFor("error pinned to seed", `!!document.querySelector('g.node.has-error[data-node="seed"]')`, 20*time.Second)
	if b.count(`g.node.has-error[data-node="web"]`) != 0 {
		t.Errorf("web node marked with an error; only seed lacks a parameter")
	}
	b.shot("06-editor-validation-error")

	// Select seed and fill the parameter from the schema-generated form.
	b.click(`g.node[data-node="seed"] .node-id`)
	b.waitFor("param form", `!!document.querySelector('.inspector input[data-param="database"]')`, 5*time.Second)
	b.fill(`.inspector input[data-param="database"]`, "shop")
	b.click("#validate")
	b.waitText(".editor-status", "The pipeline is valid")
	b.click("#save-pipeline")
	b.waitText(".editor-status", "Saved as version 1")
	b.shot("07-pipeline-editor")

	// The API has the graph exactly as drawn.
	var projects restapi.List[restapi.Project]
	env.Admin.Get(apitest.Path("/projects")).Want(t, 200).Decode(t, &projects)
	if len(projects.Items) != 1 {
		t.Fatalf("projects: %+v", projects.Items)
	}
	var saved restapi.PipelineVersion
	env.Admin.Get(apitest.Path("/projects/%d/pipeline", projects.Items[0].ID)).Want(t, 200).Decode(t, &saved)
	var g struct {
		Nodes []struct {
			ID       string         `json:"id"`
			Kind     string         `json:"kind"`
			Service  string         `json:"service"`
			Plugin   string         `json:"plugin"`
			Params   map[string]any `json:"params"`
			Port     int            `json:"port"`
			Position *struct{ X, Y float64 }
		} `json:"nodes"`
		Edges [][2]string `json:"edges"`
	}
	if err := json.Unmarshal(saved.Graph, &g); err != nil {
		t.Fatalf("graph %s: %v", saved.Graph, err)
	}
	if saved.Version != 1 || len(g.Nodes) != 2 || len(g.Edges) != 1 || g.Edges[0] != [2]string{"seed", "web"} {
		t.Fatalf("saved pipeline v%d: %s", saved.Version, saved.Graph)
	}
	for _, n := range g.Nodes {
		if n.Position == nil {
			t.Errorf("node %s saved without a position", n.ID)
		}
		if n.ID == "seed" && (n.Kind != "component" || n.Plugin != "seed" || n.Params["database"] != "shop") {
			t.Errorf("seed node: %+v", n)
		}
		if n.ID == "web" && (n.Kind != "service" || n.Service != "web" || n.Port != 8080) {
			t.Errorf("web node: %+v", n)
		}
	}

	// Delete the edge with the keyboard, save version 2, then view version
	// 1 read-only: it still has the edge and no editing controls.
	ex, ey := b.center(`g.edge[data-edge="seed->web"] .edge-line`)
	b.do("click edge", chromedpClick(ex, ey))
	b.do("press Delete", keyPress("Delete"))
	b.waitFor("edge removed", `!document.querySelector('g.edge[data-edge="seed->web"]')`, 5*time.Second)
	b.click("#save-pipeline")
	b.waitText(".editor-status", "Saved as version 2")
	b.open(fmt.Sprintf("/admin/projects/%d/pipeline?version=1", projects.Items[0].ID))
	b.waitText(".notice", "version 1, read-only")
	if b.count(`g.edge[data-edge="seed->web"]`) != 1 || b.count(".palette") != 0 || b.count(".port") != 0 || b.count("#save-pipeline:not([hidden])") != 0 {
		t.Errorf("old version view: want the edge, no palette, no ports, no save button")
	}
	b.shot("08-pipeline-old-version")

	// A node on the environment page: the token is shown once, inside the
	// docker run command that starts the agent.
	b.open("/admin/environments")
	b.click(`tr[data-name="qa"] a`)
	b.waitText("#page-title", "Environment qa")
	b.click("#new-node")
	b.fill(`dialog[open] #node-form [name="name"]`, "node-1")
	b.fill(`dialog[open] #node-form [name="host"]`, "127.0.0.1")
	b.fill(`dialog[open] #node-form [name="port"]`, "7443")
	b.click(`dialog[open] #node-form button[type="submit"]`)
	b.waitFor("agent token dialog", `!!document.querySelector('dialog[open] #agent-token')`, 20*time.Second)
	token := eval[string](b, `document.querySelector('#agent-token').value`)
	cmd := b.textOf("#agent-command")
	if len(token) < 20 || !strings.Contains(cmd, "docker run") || !strings.Contains(cmd, token) {
		t.Errorf("token %q / command %q: want the token inside a docker run command", token, cmd)
	}
	if !strings.Contains(cmd, "-p 7443:5000") || !strings.Contains(cmd, "-v /var/lib/nullops-agent:/data") {
		t.Errorf("docker run command %q: want the node's port published to 5000 and the documented data dir", cmd)
	}
	if compose := b.textOf("#agent-compose-command"); !strings.Contains(compose, "AGENT_TOKEN="+token+"/\" .env") ||
		!strings.Contains(compose, "docker-compose up -d agent") {
		t.Errorf("compose command %q: want the token written to .env and the agent service started", compose)
	}
	b.shot("04-node-token")
	b.click(`dialog[open] .token-box button.primary`) // Done → "did you copy it?"
	b.click(`dialog[open] button[value="ok"]`)
	b.waitFor("token dialog closed", `!document.querySelector('dialog[open]')`, 10*time.Second)
	b.waitFor("node row", `!!document.querySelector('tr[data-name="node-1"]')`, 10*time.Second)
	b.shot("05-environment-nodes")

	// Rotating the token of a node whose agent is not reachable: the node
	// says the rotation is pending until the agent next connects, and its
	// channel events list the rotation.
	b.click(`button[aria-label="Rotate token of node-1"]`)
	b.waitFor("confirm dialog", `!!document.querySelector('dialog[open] button[value="ok"]')`, 5*time.Second)
	b.click(`dialog[open] button[value="ok"]`)
	b.waitFor("new token dialog", `!!document.querySelector('dialog[open] #agent-token')`, 20*time.Second)
	if lead := b.textOf(`dialog[open] .token-box p`); !strings.Contains(lead, "token rotation pending") {
		t.Errorf("rotation dialog says %q; want it to explain the pending rotation", lead)
	}
	b.click(`dialog[open] .token-box button.primary`)
	b.click(`dialog[open] button[value="ok"]`)
	b.waitFor("token dialog closed", `!document.querySelector('dialog[open]')`, 10*time.Second)
	b.waitFor("rotation pending on the node", `!!document.querySelector('tr[data-name="node-1"] [data-token-pending="rotation"]')`, 20*time.Second)
	if txt := b.textOf(`tr[data-name="node-1"] [data-token-pending="rotation"]`); !strings.Contains(txt, "completes when it next connects") {
		t.Errorf("pending rotation shown as %q", txt)
	}
	b.click(`button[data-node-events="node-1"]`)
	b.waitFor("channel events", `!!document.querySelector('dialog[open] tr[data-kind="rotation_pending"]')`, 20*time.Second)
	b.shot("05b-node-rotation-pending")
	b.click(`dialog[open] button[aria-label="Close"]`)
	b.waitFor("events dialog closed", `!document.querySelector('dialog[open]')`, 10*time.Second)

	// People: a user, a team with that member, and the team's read access
	// to the project, all through the UI.
	b.createInDialog("/admin/users", "user", func(f string) {
		b.fill(f+` [name="username"]`, "qa1")
		b.fill(f+` [name="display_name"]`, "Quinn QA")
		b.fill(f+` [name="password"]`, "qa1-password-long")
	})
	b.createInDialog("/admin/teams", "team", func(f string) {
		b.fill(f+` [name="name"]`, "QA")
	})
	b.click(`tr[data-name="QA"] a`)
	b.waitText("#page-title", "Team QA")
	b.selectWait(`#member-form [name="user_id"]`, "Quinn QA")
	b.click(`#member-form button[type="submit"]`)
	b.waitText("#toasts", "Member added")
	b.waitText(".table-wrap", "qa1")
	b.open(fmt.Sprintf("/admin/projects/%d", projects.Items[0].ID))
	b.selectWait(`#grant-form [name="team_id"]`, "QA")
	b.selectOption(`#grant-form [name="level"]`, "Read-only")
	b.click(`#grant-form button[type="submit"]`)
	b.waitText("#toasts", "Access granted")
	b.waitText("#access-h + p + div", "read-only")
	b.shot("09-project-access")

	// The audit log lists what happened, filtered by action.
	b.open("/admin/audit")
	b.fill(`#audit-filters [name="action"]`, "pipeline.save")
	b.click(`#audit-filters button[type="submit"]`)
	b.waitFor("two pipeline.save entries", `document.querySelectorAll('tr[data-audit-id]').length === 2 && document.querySelectorAll('[data-action-code="pipeline.save"]').length === 2`, 10*time.Second)
	b.shot("10-audit")
}
